"""The subscription ledger, the operator's moment settings, members' mutes, and every message and attempt."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc

GRANT_RESULTS = ("accept", "reject", "ban")
MESSAGE_STATES = ("pending", "sent", "failed", "skipped")


class SubscriptionGrant(Base):
    """One answer of the member to wx.requestSubscribeMessage for one template. An "accept" is a one-time grant
    that exactly one send consumes (`consumed_at`, `message_id`); "reject" and "ban" are kept as the record of
    a refusal (a ban also voids the grants left for that template: `consumed_at` set, `message_id` NULL)."""

    __tablename__ = "subscription_grants"
    __table_args__ = (
        CheckConstraint("result IN ('accept', 'reject', 'ban')", name="result"),
        Index("ix_subscription_grants_open", "member_id", "template_id",
              postgresql_where=text("result = 'accept' AND consumed_at IS NULL"),
              sqlite_where=text("result = 'accept' AND consumed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[int | None] = mapped_column(BigInt)


class NotificationMoment(Base):
    """The operator's settings for one moment (defaults in `moments.DEFAULTS` until saved)."""

    __tablename__ = "notification_moments"

    moment: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    channels: Mapped[list] = mapped_column(JsonDoc)  # ["subscribe", "template"] in the order tried
    subscribe_template_id: Mapped[str] = mapped_column(String(64), default="")
    subscribe_fields: Mapped[dict] = mapped_column(JsonDoc)  # WeChat key ("thing1") -> value name ("amount")
    template_template_id: Mapped[str] = mapped_column(String(64), default="")
    template_fields: Mapped[dict] = mapped_column(JsonDoc)
    page: Mapped[str] = mapped_column(String(256), default="")
    digest_seconds: Mapped[int] = mapped_column(Integer, default=0)  # 0: each message alone
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class NotificationMute(Base):
    __tablename__ = "notification_mutes"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    moment: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotificationMessage(Base):
    """One message for one (moment, member, event): replays of the event find the row and send nothing."""

    __tablename__ = "notification_messages"
    __table_args__ = (
        UniqueConstraint("moment", "member_id", "event_id", name="uq_notification_messages_once"),
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="status"),
        Index("ix_notification_messages_member", "member_id", "id"),
        Index("ix_notification_messages_msgid", "msgid"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    moment: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    event_id: Mapped[int] = mapped_column(BigInt)
    values: Mapped[dict] = mapped_column(JsonDoc)  # the moment's values (integer fen, ids, short strings)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    reason: Mapped[str] = mapped_column(String(32), default="")  # skipped: muted, disabled, no_channel, ...
    channel: Mapped[str] = mapped_column(String(16), default="")  # subscribe | template once chosen
    template_id: Mapped[str] = mapped_column(String(64), default="")
    msgid: Mapped[int | None] = mapped_column(BigInt)
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str] = mapped_column(String(200), default="")
    delivery: Mapped[str] = mapped_column(String(64), default="")  # TEMPLATESENDJOBFINISH Status
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # quiet hours
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NotificationAttempt(Base):
    """Every call to WeChat for a message, and every decision not to call (operators see them per member)."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInt, ForeignKey("notification_messages.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # sent | retry | failed | skipped
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
