from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow

MEMBER_ACCOUNT_KINDS = ("pending", "available", "withdrawing")
PLATFORM_ACCOUNT_KINDS = ("commission_expense", "payout_clearing", "fees", "tax_withheld", "prize_expense")


class LedgerAccount(Base):
    """One account: a member's pending/available/withdrawing money, or a platform account.

    balance_fen is a cache of SUM(journal_lines.amount_fen); it is only ever changed by app.ledger.service
    in the same transaction as the lines, under a row lock. `flask ledger check` proves the two agree."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('pending', 'available', 'withdrawing', 'commission_expense', 'payout_clearing', 'fees', "
            "'tax_withheld', 'prize_expense')", name="kind"),
        CheckConstraint(
            "(member_id IS NOT NULL AND kind IN ('pending', 'available', 'withdrawing')) OR "
            "(member_id IS NULL AND kind IN ('commission_expense', 'payout_clearing', 'fees', 'tax_withheld', "
            "'prize_expense'))",
            name="owner_matches_kind"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    # "member:<id>:<kind>" or "platform:<kind>": one account per owner and kind, enforced by this unique code.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JournalEntry(Base):
    """One money movement. `key` is derived from the business event, so replaying the event finds this row."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_ref", "ref_type", "ref_id"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    memo: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JournalLine(Base):
    """Append-only. The lines of one entry sum to zero (checked on write and by `flask ledger check`)."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="nonzero"),
        Index("ix_journal_lines_account_entry", "account_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInt, ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(BigInt, ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
