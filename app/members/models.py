from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow

ROLES = ("consumer", "partner", "captain", "clerk", "store_manager")
IDENTITY_KINDS = ("oa_openid", "mini_openid", "unionid", "phone")


class Member(Base):
    """One person, whatever channel they came from. Merged members stay as tombstones pointing at the survivor."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("referrer_id IS NULL OR referrer_id <> id", name="no_self_referral"),
        CheckConstraint("status IN ('active', 'merged')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    avatar_url: Mapped[str] = mapped_column(String(512), default="")
    # Personal data is encrypted at rest (app.crypto); only the mask is readable.
    phone_enc: Mapped[str | None] = mapped_column(String(512))
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    real_name_enc: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    # The level-1 referrer. Written only by app.referrals with a conditional UPDATE so races bind once.
    referrer_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MemberRole(Base):
    __tablename__ = "member_roles"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Identity(Base):
    """A channel identity bound to a member. (kind, value) is unique: one openid is one member, always.

    Phone values are a keyed hash (blind index), never the number itself."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"), Index("ix_identities_member", "member_id"))

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemberMerge(Base):
    """Audit of a merge. merged_id is unique: merging the same pair again is a no-op."""

    __tablename__ = "member_merges"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    kept_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    merged_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), unique=True)
    evidence: Mapped[str] = mapped_column(String(16))  # unionid | phone
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiSession(Base):
    """A mini-program login. The refresh token rotates on every use; reusing an old one revokes the family.

    WeChat's session_key is kept here encrypted and never sent to the client."""

    __tablename__ = "api_sessions"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_key_enc: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Operator(Base):
    """A console user (merchant staff). Not a WeChat member: operators sign in with a password."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
