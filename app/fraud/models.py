from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class RiskFlag(Base):
    """Something an operator must look at. An open flag holds the member's withdrawals and commissions."""

    __tablename__ = "risk_flags"
    __table_args__ = (Index("ix_risk_flags_member_status", "member_id", "status"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | dismissed | confirmed
    details: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
