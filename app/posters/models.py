from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class PosterTemplate(Base):
    """An operator's poster design. Several may be active at once; a partner picks one."""

    __tablename__ = "poster_templates"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PosterTemplateVersion(Base):
    """One immutable edit of a template. Rendered posters point here, so an edit never changes a shared poster."""

    __tablename__ = "poster_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    template_id: Mapped[int] = mapped_column(BigInt, ForeignKey("poster_templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JsonDoc)  # posters.spec.TemplateSpec.to_dict()
    spec_fingerprint: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PosterBackground(Base):
    """An uploaded background, checked once. The bytes live in the poster store under backgrounds/<sha256>."""

    __tablename__ = "poster_backgrounds"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PosterRender(Base):
    """A member's poster for one template version, found again without fetching the avatar.

    request_fingerprint hashes what is known before any download (version, nickname, avatar URL, QR payload,
    placeholders, format); poster_key is the content address of the image those inputs produced."""

    __tablename__ = "poster_renders"
    __table_args__ = (Index("ix_poster_renders_member_version", "member_id", "template_version_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    template_version_id: Mapped[int] = mapped_column(BigInt, ForeignKey("poster_template_versions.id"))
    request_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    poster_key: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(8))
    avatar_fallback: Mapped[bool] = mapped_column(Boolean, default=False)  # the avatar could not be fetched
    byte_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
