from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigInt, Base, UTCDateTime, utcnow
from app.types import JsonDoc


class OutboxMessage(Base):
    """A job written in the same transaction as the state change that needs it (see app/outbox and workers/outbox.py).

    Not done until the job returned. At most one live (not done) message per `dedupe_key`."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("uq_outbox_messages_live_key", "dedupe_key", unique=True,
              postgresql_where=text("done_at IS NULL"), sqlite_where=text("done_at IS NULL")),
        Index("ix_outbox_messages_due", "available_at", postgresql_where=text("done_at IS NULL"),
              sqlite_where=text("done_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    func: Mapped[str] = mapped_column(String(128))  # a registered job name, e.g. "withdrawals.drive_payout"
    args: Mapped[list] = mapped_column(JsonDoc)
    queue: Mapped[str] = mapped_column(String(32), default="default")
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times handed to RQ
    failures: Mapped[int] = mapped_column(Integer, default=0)  # times the job raised
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dead: Mapped[bool] = mapped_column(default=False)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
