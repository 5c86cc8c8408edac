"""Operators' poster templates: backgrounds, versioned specs, activation, previews."""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.errors import NotFound, ValidationFailed
from app.outbox import emit
from app.posters.models import PosterBackground, PosterTemplate, PosterTemplateVersion
from app.posters.storage import background_name
from posters import PosterInputs, SpecError, TemplateSpec, parse_spec, render_poster
from posters.images import ImageRejected, inspect_background
from posters.render import CONTENT_TYPES
from posters.samples import sample_inputs
from posters.store import BlobStore


def upload_background(session: Session, store: BlobStore, data: bytes, actor: str) -> PosterBackground:
    try:
        info = inspect_background(data)
    except ImageRejected as exc:
        raise ValidationFailed(str(exc), code=exc.code) from None
    sha = hashlib.sha256(data).hexdigest()
    store.put(background_name(sha), data)  # content-addressed: writing before the commit is harmless
    bg = session.get(PosterBackground, sha)
    if bg is None:
        bg = PosterBackground(sha256=sha, format=info.format.lower(), width=info.width, height=info.height,
                              byte_size=len(data), uploaded_by=actor)
        session.add(bg)
        session.flush()
        record(session, actor, "poster_background.upload", "poster_background", sha, width=info.width,
               height=info.height, bytes=len(data))
    return bg


def validated_spec(session: Session, raw: dict) -> TemplateSpec:
    try:
        spec = parse_spec(raw)
    except SpecError as exc:
        raise ValidationFailed("The template cannot be drawn; see details.", code="poster_spec_invalid",
                               details=exc.errors) from None
    if spec.background_sha256 and session.get(PosterBackground, spec.background_sha256) is None:
        raise ValidationFailed("Upload the background first.", code="poster_background_unknown",
                               details={"background.sha256": "no uploaded background has this hash"})
    return spec


def _add_version(session: Session, template: PosterTemplate, spec: TemplateSpec, actor: str) -> PosterTemplateVersion:
    version = PosterTemplateVersion(template_id=template.id, version=template.current_version, spec=spec.to_dict(),
                                    spec_fingerprint=spec.fingerprint, created_by=actor)
    session.add(version)
    session.flush()
    return version


PRERENDER_TEMPLATE = "posters.prerender_template"


def _schedule_prerender(session: Session, template: PosterTemplate) -> None:
    """After the commit, a worker warms every partner's poster of this template version."""
    if template.active:
        emit(session, PRERENDER_TEMPLATE, template.id,
             key=f"poster-template-{template.id}-v{template.current_version}")


def create_template(session: Session, actor: str, name: str, spec: dict, active: bool = True,
                    sort_order: int = 0) -> PosterTemplate:
    parsed = validated_spec(session, spec)
    template = PosterTemplate(name=name, active=active, current_version=1, sort_order=sort_order)
    session.add(template)
    session.flush()
    _add_version(session, template, parsed, actor)
    record(session, actor, "poster_template.create", "poster_template", template.id, version=1, active=active)
    _schedule_prerender(session, template)
    return template


def update_template(session: Session, template_id: int, actor: str, *, name: str | None = None,
                    spec: dict | None = None, active: bool | None = None,
                    sort_order: int | None = None) -> PosterTemplate:
    """Edits make a new version only when the drawing changes; name, order and activation do not."""
    template = get_template(session, template_id, for_update=True)
    changed: dict = {}
    new_version = False
    if spec is not None:
        parsed = validated_spec(session, spec)
        if parsed.fingerprint != current_version(session, template).spec_fingerprint:
            template.current_version += 1
            _add_version(session, template, parsed, actor)
            changed["version"] = template.current_version
            new_version = True
    if name is not None and name != template.name:
        template.name = changed["name"] = name
    if sort_order is not None and sort_order != template.sort_order:
        template.sort_order = changed["sort_order"] = sort_order
    activated = active is True and not template.active
    if active is not None and active != template.active:
        template.active = changed["active"] = active
    session.flush()
    if changed:
        record(session, actor, "poster_template.update", "poster_template", template.id, **changed)
    if new_version or activated:
        _schedule_prerender(session, template)
    return template


def get_template(session: Session, template_id: int, *, for_update: bool = False) -> PosterTemplate:
    stmt = select(PosterTemplate).where(PosterTemplate.id == template_id)
    template = session.scalar(stmt.with_for_update() if for_update else stmt)
    if template is None:
        raise NotFound("No such poster template.", code="poster_template_not_found")
    return template


def current_version(session: Session, template: PosterTemplate, version: int | None = None) -> PosterTemplateVersion:
    row = session.scalar(select(PosterTemplateVersion).where(
        PosterTemplateVersion.template_id == template.id,
        PosterTemplateVersion.version == (version or template.current_version)))
    if row is None:
        raise NotFound("No such template version.", code="poster_template_version_not_found")
    return row


def spec_of(version: PosterTemplateVersion) -> TemplateSpec:
    return parse_spec(version.spec)


def list_templates(session: Session, active_only: bool = False) -> list[PosterTemplate]:
    stmt = select(PosterTemplate).order_by(PosterTemplate.sort_order, PosterTemplate.id)
    if active_only:
        stmt = stmt.where(PosterTemplate.active.is_(True))
    return list(session.scalars(stmt))


def template_view(session: Session, template: PosterTemplate, with_versions: bool = False) -> dict:
    version = current_version(session, template)
    out = {"id": template.id, "name": template.name, "active": template.active, "sort_order": template.sort_order,
           "version": template.current_version, "spec": version.spec,
           "updated_at": template.updated_at.isoformat()}
    if with_versions:
        rows = session.scalars(select(PosterTemplateVersion).where(PosterTemplateVersion.template_id == template.id)
                               .order_by(PosterTemplateVersion.version.desc()))
        out["versions"] = [{"version": v.version, "created_by": v.created_by, "created_at": v.created_at.isoformat()}
                           for v in rows]
    return out


def _render_sample(store: BlobStore, spec: TemplateSpec, public_base_url: str, fmt: str | None) -> tuple[bytes, str]:
    background = store.get(background_name(spec.background_sha256)) if spec.background_sha256 else None
    sample = sample_inputs(public_base_url)
    fmt = fmt or spec.format
    data = render_poster(spec, background, PosterInputs(sample.nickname, sample.avatar, sample.qr,
                                                        sample.placeholders, fmt))
    return data, CONTENT_TYPES[fmt]


def preview_template(session: Session, store: BlobStore, template_id: int, public_base_url: str,
                     version: int | None = None, fmt: str | None = None) -> tuple[bytes, str]:
    """The template drawn with sample data (nickname with emoji, default avatar, sample QR) for the operator."""
    template = get_template(session, template_id)
    return _render_sample(store, spec_of(current_version(session, template, version)), public_base_url, fmt)


def preview_spec(session: Session, store: BlobStore, spec: dict, public_base_url: str,
                 fmt: str | None = None) -> tuple[bytes, str]:
    """An unsaved design drawn with sample data, so operators can iterate before creating a version."""
    return _render_sample(store, validated_spec(session, spec), public_base_url, fmt)
