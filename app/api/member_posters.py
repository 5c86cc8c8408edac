"""A partner's own share poster in one tap, and the immutable poster images themselves."""
from __future__ import annotations

import re

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import OneOf, Range
from flask import Response, request

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.responses import ok
from app.api.web import db, runtime
from app.errors import NotFound
from app.posters import service
from app.posters.storage import poster_store
from posters.render import CONTENT_TYPES, EXTENSIONS
from posters.spec import FORMATS

bp = APIBlueprint("member_posters", __name__, tag="posters")
_FILENAME = re.compile(r"^([0-9a-f]{40})\.(jpg|png|webp)$")
_FORMAT_OF = {ext: fmt for fmt, ext in EXTENSIONS.items()}


class PosterQuery(Schema):
    template_id = Integer(validate=Range(min=1), metadata={"description": "default: the first active template"})
    format = String(validate=OneOf(FORMATS))


class OfferedTemplateOut(Schema):
    id = Integer()
    name = String()
    version = Integer()


class OfferedTemplatesOut(Schema):
    templates = List(Nested(OfferedTemplateOut))


class PosterOut(Schema):
    template_id = Integer()
    template_version = Integer()
    key = String(metadata={"description": "content address"})
    format = String()
    content_type = String()
    bytes = Integer()
    url = String(metadata={"description": "immutable: /posters/<key>.<ext>"})
    cached = Boolean()


@bp.get("/api/mp/poster-templates")
@member_required
@bp.doc(summary="Poster designs a partner can pick from", security=MEMBER_AUTH,
        responses=ok("the active templates", OfferedTemplatesOut))
def offered_templates():
    return {"templates": service.offered_templates(db())}


@bp.get("/api/mp/posters")
@member_required
@bp.input(PosterQuery, location="query", arg_name="query")
@bp.doc(summary="My share poster for a template: its immutable URL (rendered now if it changed)",
        security=MEMBER_AUTH, responses=ok("where my poster is", PosterOut))
def my_poster(query):
    rt = runtime()
    out = service.member_poster(db(), poster_store(rt.settings), current_member_id(), rt.settings.public_base_url,
                                query.get("template_id"), query.get("format"))
    db().commit()
    return out


@bp.get("/posters/<filename>")
@bp.doc(summary="A rendered poster by content address: immutable, cacheable forever, 304 on If-None-Match",
        responses={200: {"description": "the image (JPEG, PNG or WebP by the extension)",
                         "content": {ct: {"schema": {"type": "string", "format": "binary"}}
                                     for ct in ("image/jpeg", "image/png", "image/webp")}},
                   304: "not modified (If-None-Match)"})
def poster_image(filename: str):
    m = _FILENAME.match(filename)
    if not m:
        raise NotFound("No such poster.", code="poster_not_found")
    key, ext = m.groups()
    etag = f'"{key}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
    if key in request.if_none_match:
        return Response(status=304, headers=headers)
    data = poster_store(runtime().settings).get(f"posters/{filename}")
    if data is None:
        raise NotFound("No such poster.", code="poster_not_found")
    return Response(data, mimetype=CONTENT_TYPES[_FORMAT_OF[ext]], headers=headers)
