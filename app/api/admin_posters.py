"""Operators design poster templates: upload a background, create and edit (versioned), activate, preview."""
from __future__ import annotations


from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from flask import Response

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.fields import Int, Text
from app.api.responses import ok
from app.api.web import allow_body, db, runtime
from app.posters import templates
from app.posters.storage import poster_store
from posters.images import BACKGROUND_MAX_BYTES
from posters.spec import FORMATS

bp = APIBlueprint("admin_posters", __name__, tag="admin")


class BackgroundIn(Schema):
    file = File(required=True)


class TemplateIn(Schema):
    name = Text(required=True, validate=Length(1, 64))
    spec = Dict(required=True, metadata={"description": "canvas, background.sha256, output, elements, defaults; "
                                                        "see docs/posters.md"})
    active = Boolean(load_default=True)
    sort_order = Int(load_default=0)


class TemplateEditIn(Schema):
    name = Text(validate=Length(1, 64))
    spec = Dict()
    active = Boolean()
    sort_order = Int()


class PreviewQuery(Schema):
    version = Integer(validate=Range(min=1))
    format = String(validate=OneOf(FORMATS))


class SpecPreviewIn(Schema):
    spec = Dict(required=True)
    format = String(validate=OneOf(FORMATS))


class BackgroundOut(Schema):
    sha256 = String(metadata={"description": "name it in a spec's background.sha256"})
    format = String()
    width = Integer()
    height = Integer()
    bytes = Integer()


class VersionOut(Schema):
    version = Integer()
    created_by = String()
    created_at = String()


class TemplateOut(Schema):
    id = Integer()
    name = String()
    active = Boolean()
    sort_order = Integer()
    version = Integer()
    spec = Dict()
    updated_at = String()


class TemplateDetailOut(TemplateOut):
    versions = List(Nested(VersionOut), metadata={"description": "newest first"})


class TemplatesOut(Schema):
    templates = List(Nested(TemplateOut))


IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def _image_response(description: str) -> dict:
    return {200: {"description": description,
                  "content": {ct: {"schema": {"type": "string", "format": "binary"}} for ct in IMAGE_TYPES}}}


def _image(data: bytes, content_type: str) -> Response:
    resp = Response(data, mimetype=content_type)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/api/admin/poster-backgrounds")
@operator_required
@allow_body(BACKGROUND_MAX_BYTES + (64 << 10))
@bp.input(BackgroundIn, location="files", arg_name="body")
@bp.doc(summary="Upload a poster background (JPEG, PNG or WebP, at most 10 MB and 16 megapixels)",
        security=OPERATOR_AUTH, responses=ok("the stored background (content-addressed)", BackgroundOut, 201))
def upload_background(body):
    data = body["file"].read(BACKGROUND_MAX_BYTES + 1)
    bg = templates.upload_background(db(), poster_store(runtime().settings), data, operator_actor())
    out = {"sha256": bg.sha256, "format": bg.format, "width": bg.width, "height": bg.height, "bytes": bg.byte_size}
    db().commit()
    return out, 201


@bp.post("/api/admin/poster-templates")
@operator_required
@bp.input(TemplateIn, arg_name="body")
@bp.doc(summary="Create a poster template (version 1)", security=OPERATOR_AUTH,
        responses=ok("the new template", TemplateOut, 201))
def create_template(body):
    t = templates.create_template(db(), operator_actor(), body["name"], body["spec"], body["active"],
                                  body["sort_order"])
    out = templates.template_view(db(), t)
    db().commit()
    return out, 201


@bp.get("/api/admin/poster-templates")
@operator_required
@bp.doc(summary="All poster templates, active or not", security=OPERATOR_AUTH,
        responses=ok("every template", TemplatesOut))
def list_templates():
    return {"templates": [templates.template_view(db(), t) for t in templates.list_templates(db())]}


@bp.get("/api/admin/poster-templates/<int:template_id>")
@operator_required
@bp.doc(summary="One template with its version history", security=OPERATOR_AUTH,
        responses=ok("the template and its versions", TemplateDetailOut))
def get_template(template_id: int):
    return templates.template_view(db(), templates.get_template(db(), template_id), with_versions=True)


@bp.patch("/api/admin/poster-templates/<int:template_id>")
@operator_required
@bp.input(TemplateEditIn, arg_name="body")
@bp.doc(summary="Edit a template: a changed spec makes a new version; name, order and activation do not",
        security=OPERATOR_AUTH, responses=ok("the template as changed", TemplateOut))
def edit_template(template_id: int, body):
    t = templates.update_template(db(), template_id, operator_actor(), **body)
    out = templates.template_view(db(), t)
    db().commit()
    return out


@bp.get("/api/admin/poster-templates/<int:template_id>/preview")
@operator_required
@bp.input(PreviewQuery, location="query", arg_name="query")
@bp.doc(summary="The template drawn with sample data (image bytes)", security=OPERATOR_AUTH,
        responses=_image_response("the preview image, in the template's (or the asked) format"))
def preview_template(template_id: int, query):
    rt = runtime()
    data, ctype = templates.preview_template(db(), poster_store(rt.settings), template_id,
                                             rt.settings.public_base_url, query.get("version"), query.get("format"))
    return _image(data, ctype)


@bp.post("/api/admin/poster-templates/preview")
@operator_required
@bp.input(SpecPreviewIn, arg_name="body")
@bp.doc(summary="An unsaved spec drawn with sample data (image bytes)", security=OPERATOR_AUTH,
        responses=_image_response("the preview image, in the spec's (or the asked) format"))
def preview_spec(body):
    rt = runtime()
    data, ctype = templates.preview_spec(db(), poster_store(rt.settings), body["spec"],
                                         rt.settings.public_base_url, body.get("format"))
    return _image(data, ctype)
