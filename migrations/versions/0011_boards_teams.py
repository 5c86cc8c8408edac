"""teams have members (one team per member, with a history of joins, leaves, moves and removals) and an invite
code; boards keep the ledger of what each event counted, from which `flask boards rebuild` restores Redis

Revision ID: 0011_boards_teams
Revises: 0010_codes_exclusive
"""
import sqlalchemy as sa
from alembic import op

import app.db

revision = "0011_boards_teams"
down_revision = "0010_codes_exclusive"
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


def downgrade() -> None:
    op.drop_table("team_membership_changes")
    op.drop_table("team_members")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_constraint("uq_teams_invite_code", type_="unique")
        batch_op.drop_column("invite_code")
