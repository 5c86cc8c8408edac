from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow
from app.types import JsonDoc


class BoardCredit(Base):
    """What one event counted on one subject's boards: +sales for an order's referrer, their team and store,
    -sales for a refund of it (at the order's paid time, so in the periods the order counted in), and so on.
    The boards in Redis are the sums of these rows; `flask boards rebuild` restores them from here."""

    __tablename__ = "board_credits"
    __table_args__ = (
        UniqueConstraint("event_id", "ref", "subject_kind", "subject_id", "metric"),
        Index("ix_board_credits_ref", "ref"),
        Index("ix_board_credits_kind_metric_at", "subject_kind", "metric", "at"),  # contest windows
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInt)
    ref: Mapped[str] = mapped_column(String(40))  # order:<id> | commission:<id> | bind:<member id>
    subject_kind: Mapped[str] = mapped_column(String(8))  # member | team | store
    subject_id: Mapped[int] = mapped_column(BigInt)
    metric: Mapped[str] = mapped_column(String(16))  # sales_fen | new_members | commission_fen
    amount: Mapped[int] = mapped_column(BigInteger)
    league: Mapped[str] = mapped_column(String(32), default="")  # the member's grade when it counted
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the moment whose periods it counts in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BoardSource(Base):
    """An order or a commission the boards have counted, and when (a refund or a reversal that arrives first
    waits for it)."""

    __tablename__ = "board_sources"

    ref: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class BoardConfig(Base):
    """What members are offered of one board (kind:metric) and its privacy: whether members see it, which periods,
    whether by grade league; hide amounts from members, anonymise members' names. Operators see every board."""

    __tablename__ = "board_configs"

    board: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    periods: Mapped[list] = mapped_column(JsonDoc, default=lambda: ["day", "week", "month", "all"])
    leagues: Mapped[bool] = mapped_column(Boolean, default=True)
    hide_amounts: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymise: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(BigInt, ForeignKey("operators.id"))


class BoardOptOut(Base):
    """A member who does not want to appear by name: others see a stable pseudonym and no avatar."""

    __tablename__ = "board_opt_outs"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contest(Base):
    """A contest (PK) between members or teams over a fixed window, by a metric, with a published tie rule.
    At the deadline a scheduled job freezes its results into contest_results, once."""

    __tablename__ = "contests"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # member | team
    metric: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    tie_rule: Mapped[str] = mapped_column(String(16))  # shared | earlier
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | frozen
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Prize rules (app/boards/prizes.py): [{ranks: [1, 3], amount_fen}] for members; for teams
    # [{ranks | goal, captain_fen, members_fen}] (members share by what each contributed).
    prizes: Mapped[list] = mapped_column(JsonDoc, default=list)
    created_by: Mapped[int | None] = mapped_column(BigInt, ForeignKey("operators.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContestResult(Base):
    __tablename__ = "contest_results"
    __table_args__ = (UniqueConstraint("contest_id", "subject_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    contest_id: Mapped[int] = mapped_column(BigInt, ForeignKey("contests.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[int] = mapped_column(BigInt)
    score: Mapped[int] = mapped_column(BigInteger)


class ContestPrize(Base):
    """What one member receives from a frozen contest, in one role. Paid through the ledger once its receiver
    passes the fraud checks (`granted`); `held` waits for an operator, who grants or rejects it."""

    __tablename__ = "contest_prizes"
    __table_args__ = (
        UniqueConstraint("contest_id", "member_id", "role"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'held', 'granted', 'rejected')", name="status"),
        Index("ix_contest_prizes_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    contest_id: Mapped[int] = mapped_column(BigInt, ForeignKey("contests.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # winner | goal | captain | share | goal_captain | goal_share
    team_id: Mapped[int | None] = mapped_column(BigInt)
    rank: Mapped[int | None] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    findings: Mapped[list] = mapped_column(JsonDoc, default=list)  # fraud signals that held it
    journal_key: Mapped[str | None] = mapped_column(String(160))
    decided_by: Mapped[int | None] = mapped_column(BigInt, ForeignKey("operators.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BadgeDefinition(Base):
    """A milestone: a member whose `figure` reaches `threshold` earns the badge, once. Operators' own badges,
    and built-in ones (app/boards/badges.py BUILTIN) once an operator changed them."""

    __tablename__ = "badge_definitions"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    figure: Mapped[str] = mapped_column(String(24))
    threshold: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemberBadge(Base):
    """A badge a member earned. The primary key is what makes it once per member, whatever races."""

    __tablename__ = "member_badges"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    badge: Mapped[str] = mapped_column(String(32), primary_key=True)  # a built-in code or a definition's
    value: Mapped[int] = mapped_column(BigInteger)  # the figure when it was earned
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BadgeFigure(Base):
    """A member's running figure for badges (referral orders, team members, withdrawals paid, contest wins, new
    members), moved once per event by the badges subscribers."""

    __tablename__ = "badge_figures"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    figure: Mapped[str] = mapped_column(String(24), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
