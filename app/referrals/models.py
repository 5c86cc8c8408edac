from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StaffAssignment(Base):
    """A clerk or manager working at a store for a period. Moving a clerk ends one row and starts another,
    so past bindings keep the store they were made in."""

    __tablename__ = "staff_assignments"
    __table_args__ = (
        Index("uq_staff_current", "member_id", unique=True, postgresql_where=text("ended_at IS NULL"),
              sqlite_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(BigInt, ForeignKey("stores.id"), index=True)
    position: Mapped[str] = mapped_column(String(16))  # clerk | manager
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Partner(Base):
    """A member's standing as a partner (推广员). The 'partner' role exists while status is active or frozen;
    a frozen or revoked partner's codes stop binding."""

    __tablename__ = "partners"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | frozen | revoked
    source: Mapped[str] = mapped_column(String(16))  # everyone | application | spend | designated
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PartnerApplication(Base):
    __tablename__ = "partner_applications"
    __table_args__ = (
        Index("uq_partner_application_pending", "member_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    note: Mapped[str] = mapped_column(String(500), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReferralCode(Base):
    """An exclusive code. `scene` is what travels (QR scene_str, mini-program scene, share link): short,
    random, never a member id. The same scene backs every channel of one code.

    A member has at most one active personal (partner or clerk) code: `uq_referral_codes_personal` makes the
    racing first requests for it agree (`codes.ensure_personal_code` inserts with ON CONFLICT DO NOTHING)."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        Index("uq_referral_codes_personal", "owner_id", unique=True,
              postgresql_where=text("status = 'active' AND kind IN ('partner', 'clerk')"),
              sqlite_where=text("status = 'active' AND kind IN ('partner', 'clerk')")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    scene: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # partner | clerk | campaign
    owner_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    # Whom a touch binds the person to (the partner or clerk); None for a store-only campaign code.
    referrer_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    store_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("stores.id"))
    # The team the code is attributed to (app/teams). A team code issued without a clerk or partner stores the
    # team's captain at issue time as referrer_id; a later captain change does not move it.
    team_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("teams.id"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked
    # Service-account parametric QR: permanent ones count against WeChat's lifetime quota of 100,000.
    oa_ticket: Mapped[str | None] = mapped_column(String(256))
    oa_url: Mapped[str | None] = mapped_column(String(256))
    oa_permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    oa_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A duplicate personal code retired in favour of this one (two codes of one member, or of two merged members):
    # it is revoked, but its scene still binds as this code, so what was shared with it keeps working.
    replaced_by_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("referral_codes.id"))


class CodeImage(Base):
    """Cached PNGs of a code per channel (WeChat calls are quota- and rate-limited)."""

    __tablename__ = "code_images"

    code_id: Mapped[int] = mapped_column(BigInt, ForeignKey("referral_codes.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # oa_qr | mini_code | share_qr
    png: Mapped[bytes] = mapped_column(LargeBinary)
    source_ref: Mapped[str] = mapped_column(String(256), default="")  # ticket the PNG was made for
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Touch(Base):
    """Every qualifying touch (scan, follow, launch, landing), whether it bound anyone or not."""

    __tablename__ = "touches"
    __table_args__ = (Index("ix_touches_code_created", "code_id", "created_at"),
                      Index("ix_touches_member", "member_id"),
                      Index("uq_touches_event_key", "event_key", unique=True,
                            postgresql_where=text("event_key IS NOT NULL"), sqlite_where=text("event_key IS NOT NULL")))

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    code_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("referral_codes.id"))
    scene: Mapped[str] = mapped_column(String(64), default="")
    member_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    # oa_subscribe | oa_scan | oa_unsubscribe | mini_launch | h5_landing
    channel: Mapped[str] = mapped_column(String(16))
    new_follower: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(24))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    # WeChat's event identity (openid:CreateTime:Event): processing the same push twice records it once.
    event_key: Mapped[str | None] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Binding(Base):
    """History of who referred whom. members.referrer_id is the current state; this is never overwritten."""

    __tablename__ = "referral_bindings"
    __table_args__ = (Index("ix_bindings_referrer_created", "referrer_id", "created_at"),
                      Index("ix_bindings_code_created", "code_id", "created_at"),  # a code's binds (code stats)
                      Index("ix_bindings_member", "member_id"))

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    referrer_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    previous_referrer_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    code_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("referral_codes.id"))
    store_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("stores.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # bind | rebind
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PendingReferral(Base):
    """With 'bind at first purchase', the touch that will bind once the person buys."""

    __tablename__ = "pending_referrals"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    code_id: Mapped[int] = mapped_column(BigInt, ForeignKey("referral_codes.id"))
    channel: Mapped[str] = mapped_column(String(16))
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReferralSettings(Base):
    """The operator's rules: one row (id=1), edited through the admin API. The row is also the lock that
    serialises permanent-QR allocation against WeChat's lifetime quota."""

    __tablename__ = "referral_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    permanent_qr_used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
