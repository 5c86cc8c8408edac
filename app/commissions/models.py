from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow

# Two levels, ever: a third level of commission is illegal pyramid selling (传销) in China. The CHECKs on
# `level` and the unique (order_id, level) make a third-level row impossible to store, whatever the code does.
LEVELS = (1, 2)
COMMISSION_STATES = ("pending", "held", "available", "reversed", "canceled")


class CommissionPlan(Base):
    """One immutable version of the commission rules. An order is settled by the version active when it was paid."""

    __tablename__ = "commission_plans"
    __table_args__ = (CheckConstraint("hold_days >= 0", name="hold_days_nonnegative"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    hold_days: Mapped[int] = mapped_column(Integer, default=7)
    self_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CommissionRate(Base):
    """A rate in basis points. grade / category '*' match anything; order_kind is any | first | repeat."""

    __tablename__ = "commission_plan_rates"
    __table_args__ = (
        UniqueConstraint("plan_id", "grade", "level", "category", "order_kind"),
        CheckConstraint("level IN (1, 2)", name="two_levels_only"),
        CheckConstraint("bps >= 0 AND bps <= 10000", name="bps_range"),
        CheckConstraint("order_kind IN ('any', 'first', 'repeat')", name="order_kind"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInt, ForeignKey("commission_plans.id"), index=True)
    grade: Mapped[str] = mapped_column(String(32), default="*")
    level: Mapped[int] = mapped_column(SmallInteger)
    category: Mapped[str] = mapped_column(String(64), default="*")
    order_kind: Mapped[str] = mapped_column(String(8), default="any")
    bps: Mapped[int] = mapped_column(Integer)


class Commission(Base):
    """What one earner gets from one order at one level. Money moves only through ledger entries keyed on it."""

    __tablename__ = "commissions"
    __table_args__ = (
        UniqueConstraint("order_id", "level"),
        CheckConstraint("level IN (1, 2)", name="two_levels_only"),
        CheckConstraint("state IN ('pending', 'held', 'available', 'reversed', 'canceled')", name="state"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("reversed_fen >= 0 AND reversed_fen <= amount_fen", name="reversal_within_amount"),
        # Only pending rows are ever looked up by due date: a partial index is smaller, and a commission leaving
        # `pending` (the maturation UPDATE, non-HOT anyway) adds no entry to it.
        Index("ix_commissions_due", "mature_at", postgresql_where=text("state = 'pending'")),
        Index("ix_commissions_earner_created", "earner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInt, ForeignKey("orders.id"))
    level: Mapped[int] = mapped_column(SmallInteger)
    earner_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    plan_id: Mapped[int] = mapped_column(BigInt, ForeignKey("commission_plans.id"))
    grade: Mapped[str] = mapped_column(String(32), default="")
    base_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # Set when the order completes: completed_at + the plan's hold days. NULL = not completed yet.
    mature_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    matured_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The journal entry that moved this commission's money pending -> available (one entry per earner and
    # maturation batch, `maturation:<batch>:<member>`). NULL until it matures. No foreign key: its per-row check
    # was a fifth of the maturation batch; `check_ledger` verifies the link instead (docs/ledger.md §6).
    mature_entry_id: Mapped[int | None] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
