"""teams have members (one team per member, with a history of joins, leaves, moves and removals) and an invite
code; boards keep the ledger of what each event counted, from which `flask boards rebuild` restores Redis;
contests and their frozen results

Revision ID: 0012_boards_teams
Revises: 0011_notify_messages
"""
import sqlalchemy as sa
from alembic import op

import app.db

revision = "0012_boards_teams"
down_revision = "0011_notify_messages"
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invite_code", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint("uq_teams_invite_code", ["invite_code"])
    op.create_table(
        "team_members",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("team_id", BIG, nullable=False),
        sa.Column("joined_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_team_members_member_id_members"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_team_members_team_id_teams"),
        sa.PrimaryKeyConstraint("member_id", name="pk_team_members"),
    )
    op.create_index("ix_team_members_team_id", "team_members", ["team_id"], unique=False)
    op.create_table(
        "team_membership_changes",
        sa.Column("id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_team_id", BIG, nullable=True),
        sa.Column("to_team_id", BIG, nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", BIG, nullable=True),
        sa.Column("at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_team_membership_changes_member_id_members"),
        sa.ForeignKeyConstraint(["from_team_id"], ["teams.id"], name="fk_team_membership_changes_from_team_id_teams"),
        sa.ForeignKeyConstraint(["to_team_id"], ["teams.id"], name="fk_team_membership_changes_to_team_id_teams"),
        sa.PrimaryKeyConstraint("id", name="pk_team_membership_changes"),
    )
    op.create_index("ix_team_membership_changes_member", "team_membership_changes", ["member_id", "at"])
    op.create_index("ix_team_membership_changes_to_team_id", "team_membership_changes", ["to_team_id"])


    op.create_table(
        "board_credits",
        sa.Column("id", BIG, nullable=False),
        sa.Column("event_id", BIG, nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.Column("subject_kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", BIG, nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("league", sa.String(length=32), nullable=False),
        sa.Column("at", app.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_board_credits"),
        sa.UniqueConstraint("event_id", "ref", "subject_kind", "subject_id", "metric",
                            name="uq_board_credits_event_id_ref_subject_kind_subject_id_metric"),
    )
    op.create_index("ix_board_credits_ref", "board_credits", ["ref"])
    op.create_table(
        "board_sources",
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.Column("at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_board_sources"),
    )
    op.create_table(
        "board_configs",
        sa.Column("board", sa.String(length=32), nullable=False),
        sa.Column("hide_amounts", sa.Boolean(), nullable=False),
        sa.Column("anonymise", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("updated_by", BIG, nullable=True),
        sa.ForeignKeyConstraint(["updated_by"], ["operators.id"], name="fk_board_configs_updated_by_operators"),
        sa.PrimaryKeyConstraint("board", name="pk_board_configs"),
    )
    op.create_table(
        "board_opt_outs",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name="fk_board_opt_outs_member_id_members"),
        sa.PrimaryKeyConstraint("member_id", name="pk_board_opt_outs"),
    )
    op.create_table(
        "contests",
        sa.Column("id", BIG, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("starts_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("ends_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("tie_rule", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frozen_at", app.db.UTCDateTime(), nullable=True),
        sa.Column("created_by", BIG, nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["operators.id"], name="fk_contests_created_by_operators"),
        sa.PrimaryKeyConstraint("id", name="pk_contests"),
    )
    op.create_index("ix_contests_ends_at", "contests", ["ends_at"])
    op.create_table(
        "contest_results",
        sa.Column("id", BIG, nullable=False),
        sa.Column("contest_id", BIG, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("subject_id", BIG, nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["contest_id"], ["contests.id"], name="fk_contest_results_contest_id_contests"),
        sa.PrimaryKeyConstraint("id", name="pk_contest_results"),
        sa.UniqueConstraint("contest_id", "subject_id", name="uq_contest_results_contest_id_subject_id"),
    )
    op.create_index("ix_contest_results_contest_id", "contest_results", ["contest_id"])


def downgrade() -> None:
    op.drop_table("contest_results")
    op.drop_table("contests")
    op.drop_table("board_opt_outs")
    op.drop_table("board_configs")
    op.drop_table("board_sources")
    op.drop_table("board_credits")
    op.drop_table("team_membership_changes")
    op.drop_table("team_members")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_constraint("uq_teams_invite_code", type_="unique")
        batch_op.drop_column("invite_code")
