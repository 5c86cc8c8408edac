"""exclusive codes are exclusive: one active personal code per member (a partial unique index), duplicates retired

Members whose racing first requests created several active personal (partner or clerk) codes keep the oldest;
the others are revoked with `replaced_by_id` naming it, so their scenes (already on shared posters) go on binding
as the kept code. Then the index makes a second active personal code impossible.

Revision ID: 0010_codes_exclusive
Revises: 0009_binding_code_index
"""
from collections import defaultdict
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0010_codes_exclusive"
down_revision = "0009_binding_code_index"
branch_labels = None
depends_on = None

PERSONAL = "status = 'active' AND kind IN ('partner', 'clerk')"


def _retire_duplicates(conn) -> None:
    codes = sa.table("referral_codes", sa.column("id", sa.BigInteger()), sa.column("status", sa.String()),
                     sa.column("revoked_at", app.db.UTCDateTime()), sa.column("replaced_by_id", sa.BigInteger()))
    rows = conn.execute(sa.text(f"SELECT id, owner_id FROM referral_codes WHERE owner_id IS NOT NULL AND {PERSONAL} "
                                "ORDER BY owner_id, created_at, id")).all()
    by_owner = defaultdict(list)
    for code_id, owner_id in rows:
        by_owner[owner_id].append(code_id)
    now = datetime.now(timezone.utc)
    for keep, *duplicates in (ids for ids in by_owner.values() if len(ids) > 1):
        conn.execute(sa.update(codes).where(codes.c.id.in_(duplicates))
                     .values(status="revoked", revoked_at=now, replaced_by_id=keep))


def upgrade():
    with op.batch_alter_table("referral_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                      nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_referral_codes_replaced_by_id_referral_codes"), "referral_codes",
                                    ["replaced_by_id"], ["id"])
    _retire_duplicates(op.get_bind())
    op.create_index("uq_referral_codes_personal", "referral_codes", ["owner_id"], unique=True,
                    postgresql_where=sa.text(PERSONAL), sqlite_where=sa.text(PERSONAL))


def downgrade():
    op.drop_index("uq_referral_codes_personal", table_name="referral_codes")
    with op.batch_alter_table("referral_codes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_referral_codes_replaced_by_id_referral_codes"), type_="foreignkey")
        batch_op.drop_column("replaced_by_id")
