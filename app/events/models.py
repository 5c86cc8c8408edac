from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class DomainEvent(Base):
    """Something that happened in a domain (`order.paid`, `member.bound`, ...), recorded in the transaction that
    made it happen. `data` holds the ids (and the few figures) it concerns; the id is the event's stable id."""

    __tablename__ = "domain_events"
    __table_args__ = (Index("ix_domain_events_name_id", "name", "id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(JsonDoc)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EventReceipt(Base):
    """A subscriber applied an event: written in the subscriber's own transaction, so its database effects
    apply once however often the event is delivered."""

    __tablename__ = "event_receipts"
    __table_args__ = (PrimaryKeyConstraint("subscriber", "event_id"),
                      Index("ix_event_receipts_event_id", "event_id"))  # retention deletes an event's receipts

    subscriber: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(BigInteger)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
