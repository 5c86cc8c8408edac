from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow


class Grade(Base):
    """A grade and its automatic upgrade rule. Every non-NULL threshold must be met; NULL means "not required".

    Sales figures are net of refunds, in fen, over the last `period_days` (NULL = all time)."""

    __tablename__ = "grades"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    auto_upgrade: Mapped[bool] = mapped_column(Boolean, default=True)
    min_personal_sales_fen: Mapped[int | None] = mapped_column(BigInteger)
    min_direct_referrals: Mapped[int | None] = mapped_column(Integer)
    min_downline_size: Mapped[int | None] = mapped_column(Integer)
    min_downline_sales_fen: Mapped[int | None] = mapped_column(BigInteger)
    period_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemberGrade(Base):
    """A member's current grade. `permanent` grades were granted by an operator: automatic rules never lower them."""

    __tablename__ = "member_grades"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    grade_code: Mapped[str] = mapped_column(String(32), ForeignKey("grades.code"))
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GradeChange(Base):
    __tablename__ = "grade_changes"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    from_grade: Mapped[str | None] = mapped_column(String(32))
    to_grade: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
