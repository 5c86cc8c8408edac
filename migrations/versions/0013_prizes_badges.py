"""contest prizes paid through the ledger (a `prize_expense` platform account), who paid an order (a fraud
signal), badges with their running figures, what members are offered of each board (enabled, periods, leagues),
and an index for contest windows

Revision ID: 0013_prizes_badges
Revises: 0012_boards_teams
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db

revision = "0013_prizes_badges"
down_revision = "0012_boards_teams"
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
branch_labels = None
depends_on = None

KINDS_OLD = "'commission_expense', 'payout_clearing', 'fees', 'tax_withheld'"
KINDS_NEW = KINDS_OLD + ", 'prize_expense'"


def _ledger_kinds(platform: str) -> None:
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ledger_accounts_kind"), type_="check")
        batch_op.drop_constraint(op.f("ck_ledger_accounts_owner_matches_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ledger_accounts_kind"), f"kind IN ('pending', 'available', 'withdrawing', {platform})")
        batch_op.create_check_constraint(
            op.f("ck_ledger_accounts_owner_matches_kind"),
            f"(member_id IS NOT NULL AND kind IN ('pending', 'available', 'withdrawing')) OR "
            f"(member_id IS NULL AND kind IN ({platform}))")


def upgrade() -> None:
    _ledger_kinds(KINDS_NEW)
    op.create_table(
        "order_payers",
        sa.Column("order_id", BIG, nullable=False),
        sa.Column("payer_openid", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_payers_order_id_orders"),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_payers"),
    )
    op.create_index("ix_order_payers_payer_openid", "order_payers", ["payer_openid"])
    with op.batch_alter_table("contests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prizes", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("board_configs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("periods", JSON, nullable=False,
                                      server_default='["day", "week", "month", "all"]'))
        batch_op.add_column(sa.Column("leagues", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_index("ix_board_credits_kind_metric_at", "board_credits", ["subject_kind", "metric", "at"])
    op.create_table(
        "contest_prizes",
        sa.Column("id", BIG, nullable=False),
        sa.Column("contest_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("team_id", BIG, nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("findings", JSON, nullable=False),
        sa.Column("journal_key", sa.String(length=160), nullable=True),
        sa.Column("decided_by", BIG, nullable=True),
        sa.Column("decided_at", app.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_contest_prizes_amount_positive")),
        sa.CheckConstraint("status IN ('pending', 'held', 'granted', 'rejected')", name=op.f("ck_contest_prizes_status")),
        sa.ForeignKeyConstraint(["contest_id"], ["contests.id"], name="fk_contest_prizes_contest_id_contests"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_contest_prizes_member_id_members"),
        sa.ForeignKeyConstraint(["decided_by"], ["operators.id"], name="fk_contest_prizes_decided_by_operators"),
        sa.PrimaryKeyConstraint("id", name="pk_contest_prizes"),
        sa.UniqueConstraint("contest_id", "member_id", "role", name="uq_contest_prizes_contest_id_member_id_role"),
    )
    op.create_index("ix_contest_prizes_contest_id", "contest_prizes", ["contest_id"])
    op.create_index("ix_contest_prizes_member_id", "contest_prizes", ["member_id"])
    op.create_index("ix_contest_prizes_status", "contest_prizes", ["status"])
    op.create_table(
        "badge_definitions",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("figure", sa.String(length=24), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_badge_definitions"),
    )
    op.create_table(
        "member_badges",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("badge", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_member_badges_member_id_members"),
        sa.PrimaryKeyConstraint("member_id", "badge", name="pk_member_badges"),
    )
    op.create_table(
        "badge_figures",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("figure", sa.String(length=24), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_badge_figures_member_id_members"),
        sa.PrimaryKeyConstraint("member_id", "figure", name="pk_badge_figures"),
    )


def downgrade() -> None:
    op.drop_table("badge_figures")
    op.drop_table("member_badges")
    op.drop_table("badge_definitions")
    op.drop_index("ix_contest_prizes_status", table_name="contest_prizes")
    op.drop_index("ix_contest_prizes_member_id", table_name="contest_prizes")
    op.drop_index("ix_contest_prizes_contest_id", table_name="contest_prizes")
    op.drop_table("contest_prizes")
    op.drop_index("ix_board_credits_kind_metric_at", table_name="board_credits")
    with op.batch_alter_table("board_configs", schema=None) as batch_op:
        batch_op.drop_column("leagues")
        batch_op.drop_column("periods")
        batch_op.drop_column("enabled")
    with op.batch_alter_table("contests", schema=None) as batch_op:
        batch_op.drop_column("prizes")
    op.drop_index("ix_order_payers_payer_openid", table_name="order_payers")
    op.drop_table("order_payers")
    _ledger_kinds(KINDS_OLD)
