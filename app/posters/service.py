"""A member's own poster for a template: found by what is known before any download, rendered at most once."""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.grades.models import Grade
from app.grades.service import grade_of
from app.errors import DomainError, NotFound
from app.members.profile import stored_avatar_name
from app.members.service import get_member
from app.posters.avatars import fetch_avatar
from app.posters.models import PosterRender, PosterTemplate
from app.posters.qr_source import member_qr_payload
from app.posters.storage import background_name
from app.referrals.models import Partner, Store
from app.referrals.stores import current_assignment
from app.posters.templates import current_version, get_template, list_templates, spec_of
from posters import RENDERER_VERSION, PosterInputs, QRPayload, get_or_render
from posters.cache import poster_name
from posters.render import CONTENT_TYPES, EXTENSIONS
from posters.spec import FORMATS
from posters.store import BlobStore

log = logging.getLogger(__name__)
DEFAULT_NICKNAME = "微信用户"
# A poster drawn with the default avatar because the download failed is reused only this long, then retried.
FALLBACK_RETRY_AFTER = timedelta(minutes=10)

Fetcher = Callable[[str | None], bytes | None]
QRSource = Callable[[Session, int, str], QRPayload]  # (session, member id, public base URL)


def poster_url(public_base_url: str, key: str, fmt: str) -> str:
    return f"{public_base_url}/posters/{key}.{EXTENSIONS[fmt]}"


def member_placeholders(session: Session, member_id: int) -> dict[str, str]:
    """Placeholder values known for this member; the template's defaults fill the rest.

    `partner_grade`: the name of the member's grade (the lowest grade when none was reached or granted yet, as
    everywhere else). `store_name`: for store staff (clerks, managers), the store they work at now."""
    values: dict[str, str] = {}
    code = grade_of(session, member_id)
    name = session.scalar(select(Grade.name).where(Grade.code == code)) if code else None
    if name:
        values["partner_grade"] = name
    assignment = current_assignment(session, member_id)
    if assignment is not None:
        store_name = session.scalar(select(Store.name).where(Store.id == assignment.store_id))
        if store_name:
            values["store_name"] = store_name
    return values


def _avatar_bytes(store: BlobStore, url: str, public_base_url: str, fetch: Fetcher | None) -> bytes | None:
    """An avatar the member uploaded comes from our own store; a WeChat one is fetched (bounded, never raises)."""
    name = stored_avatar_name(url, public_base_url)
    if name is not None:
        return store.get(name)
    return (fetch or fetch_avatar)(url)


def _fingerprint(version_id: int, spec_fingerprint: str, nickname: str, avatar_url: str, qr: QRPayload,
                 placeholders: dict, fmt: str) -> str:
    doc = [RENDERER_VERSION, version_id, spec_fingerprint, nickname, avatar_url, qr.fingerprint(),
           sorted(placeholders.items()), fmt]
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False).encode()).hexdigest()


def choose_template(session: Session, template_id: int | None) -> PosterTemplate:
    if template_id is None:
        active = list_templates(session, active_only=True)
        if not active:
            raise NotFound("No poster is available yet.", code="poster_template_not_found")
        return active[0]
    template = get_template(session, template_id)
    if not template.active:
        raise NotFound("This poster is no longer offered.", code="poster_template_not_found")
    return template


def member_poster(session: Session, store: BlobStore, member_id: int, public_base_url: str,
                  template_id: int | None = None, fmt: str | None = None, *,
                  fetch: Fetcher | None = None, qr_source: QRSource | None = None) -> dict:
    """The member's poster URL for a template; renders (and fetches the avatar) only when its inputs changed."""
    template = choose_template(session, template_id)
    version = current_version(session, template)
    spec = spec_of(version)
    fmt = fmt or spec.format
    if fmt not in FORMATS:
        raise DomainError("format must be jpeg, png or webp.", code="poster_format_invalid", status=422)
    member = get_member(session, member_id)
    nickname = member.nickname.strip() or DEFAULT_NICKNAME
    qr = (qr_source or member_qr_payload)(session, member.id, public_base_url)
    placeholders = member_placeholders(session, member.id)
    fingerprint = _fingerprint(version.id, version.spec_fingerprint, nickname, member.avatar_url, qr,
                               placeholders, fmt)

    row = session.scalar(select(PosterRender).where(PosterRender.request_fingerprint == fingerprint))
    fresh = row is not None and (not row.avatar_fallback or utcnow() - row.created_at < FALLBACK_RETRY_AFTER)
    if fresh and store.exists(poster_name(row.poster_key, row.format)):
        return _view(public_base_url, template, row.poster_key, row.format, row.byte_size, cached=True)

    avatar = _avatar_bytes(store, member.avatar_url, public_base_url, fetch) if member.avatar_url else None
    inputs = PosterInputs(nickname, avatar, qr, placeholders, fmt)
    sha = spec.background_sha256
    result = get_or_render(store, spec, inputs, lambda: store.get(background_name(sha)) if sha else None)
    _remember(session, row, fingerprint, member.id, version.id, result.key, fmt, len(result.data),
              avatar_fallback=bool(member.avatar_url) and avatar is None)
    return _view(public_base_url, template, result.key, fmt, len(result.data), cached=not result.rendered)


def _remember(session: Session, row: PosterRender | None, fingerprint: str, member_id: int, version_id: int,
              key: str, fmt: str, size: int, avatar_fallback: bool) -> None:
    values = dict(poster_key=key, format=fmt, byte_size=size, avatar_fallback=avatar_fallback, created_at=utcnow())
    if row is None:
        try:
            with session.begin_nested():
                session.add(PosterRender(member_id=member_id, template_version_id=version_id,
                                         request_fingerprint=fingerprint, **values))
            return
        except IntegrityError:  # a concurrent request for the same poster got there first
            row = session.scalar(select(PosterRender).where(PosterRender.request_fingerprint == fingerprint))
    for k, v in values.items():
        setattr(row, k, v)
    session.flush()


def _view(base: str, template: PosterTemplate, key: str, fmt: str, size: int, cached: bool) -> dict:
    return {"template_id": template.id, "template_version": template.current_version, "key": key, "format": fmt,
            "content_type": CONTENT_TYPES[fmt], "bytes": size, "url": poster_url(base, key, fmt), "cached": cached}


def offered_templates(session: Session) -> list[dict]:
    return [{"id": t.id, "name": t.name, "version": t.current_version} for t in list_templates(session, True)]


def prerender_member_posters(session: Session, store: BlobStore, member_id: int, public_base_url: str,
                             template_id: int | None = None, **kw) -> int:
    """Render the member's posters for one or every active template ahead of the tap. Returns how many."""
    templates = [choose_template(session, template_id)] if template_id else list_templates(session, True)
    done = 0
    for template in templates:
        try:
            member_poster(session, store, member_id, public_base_url, template.id, **kw)
            done += 1
        except DomainError as exc:  # not (or no longer) a partner, frozen, template gone: nothing to warm
            log.info("no poster pre-rendered for member %s, template %s: %s", member_id, template.id, exc.code)
    return done


def partner_ids(session: Session) -> list[int]:
    """Members whose posters are worth warming: active partners."""
    return list(session.scalars(select(Partner.member_id).where(Partner.status == "active")
                                .order_by(Partner.member_id)))
