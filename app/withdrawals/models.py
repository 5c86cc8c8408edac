from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow


class WithdrawalRule(Base):
    """One grade's rule (grade_code '*' is the default). Columns mirror app.withdrawals.rules.Rule."""

    __tablename__ = "withdrawal_rules"

    grade_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    min_fen: Mapped[int] = mapped_column(BigInteger)
    max_fen: Mapped[int] = mapped_column(BigInteger)
    daily_max_fen: Mapped[int] = mapped_column(BigInteger)
    daily_count: Mapped[int] = mapped_column(Integer)
    fee_bps: Mapped[int] = mapped_column(Integer)
    fee_fixed_fen: Mapped[int] = mapped_column(BigInteger)
    tax_threshold_fen: Mapped[int | None] = mapped_column(BigInteger)
    tax_bps: Mapped[int] = mapped_column(Integer)
    real_name_from_fen: Mapped[int] = mapped_column(BigInteger)
    auto_approve_below_fen: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Withdrawal(Base):
    """A member's withdrawal and its transfer bill. `out_bill_no` is fixed at creation and sent on every try;
    openid, net amount, remark and (encrypted) real name are snapshotted so every retry is identical."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("member_id", "idempotency_key"),
        CheckConstraint("amount_fen > 0 AND fee_fen >= 0 AND tax_fen >= 0 AND net_fen >= 10 "
                        "AND amount_fen = fee_fen + tax_fen + net_fen", name="amounts"),
        CheckConstraint("state IN ('REVIEWING', 'APPROVED', 'SUBMITTING', 'ACCEPTED', 'PROCESSING', "
                        "'WAIT_USER_CONFIRM', 'TRANSFERING', 'CANCELING', 'SUCCESS', 'FAIL', 'CANCELLED', "
                        "'REJECTED')", name="state"),
        Index("ix_withdrawals_member_created", "member_id", "created_at"),
        Index("ix_withdrawals_state", "state"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    tax_fen: Mapped[int] = mapped_column(BigInteger)
    net_fen: Mapped[int] = mapped_column(BigInteger)
    grade_code: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(255), default="")  # why rejected / failed / cancelled
    out_bill_no: Mapped[str] = mapped_column(String(32), unique=True)
    openid: Mapped[str] = mapped_column(String(128))
    appid: Mapped[str] = mapped_column(String(64))
    remark: Mapped[str] = mapped_column(String(32))
    user_name_enc: Mapped[str | None] = mapped_column(String(512))
    transfer_bill_no: Mapped[str | None] = mapped_column(String(64))
    package_info: Mapped[str | None] = mapped_column(String(1024))
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)  # create_transfer_bill calls started
    tries: Mapped[int] = mapped_column(Integer, default=0)  # payout job runs (drives the retry backoff)
    last_submit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WithdrawalEvent(Base):
    """Append-only history: every state change and every refused (illegal) report, with its source."""

    __tablename__ = "withdrawal_events"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    withdrawal_id: Mapped[int] = mapped_column(BigInt, ForeignKey("withdrawals.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(64))  # member | operator:<id> | system | worker | notify | query
    note: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PayoutControl(Base):
    """The single row (id 1) that pauses payouts, and the circuit breaker's limits and today's counters."""

    __tablename__ = "payout_control"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(String(255), default="")
    paused_by: Mapped[str] = mapped_column(String(64), default="")
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    daily_total_limit_fen: Mapped[int | None] = mapped_column(BigInteger)
    failure_rate_limit_bps: Mapped[int | None] = mapped_column(Integer)
    failure_window_minutes: Mapped[int] = mapped_column(Integer, default=60)
    failure_min_count: Mapped[int] = mapped_column(Integer, default=20)
    day: Mapped[str] = mapped_column(String(10), default="")  # Asia/Shanghai date of the counter below
    day_submitted_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
