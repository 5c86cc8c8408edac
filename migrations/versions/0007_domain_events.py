"""domain events and subscriber receipts; outbox rows name registered jobs

Revision ID: 0007_domain_events
Revises: 0006_wechat
"""
from alembic import op
import sqlalchemy as sa
import app.db
import app.types

revision = "0007_domain_events"
down_revision = "0006_wechat"
branch_labels = None
depends_on = None

# Outbox rows written before this revision named jobs by import path; they now name registered jobs.
RENAMED_JOBS = {
    "workers.jobs_payouts.pay_withdrawal": "withdrawals.drive_payout",
    "workers.jobs_posters.prerender_member": "posters.prerender_member",
    "workers.jobs_posters.prerender_template": "posters.prerender_template",
}


def upgrade():
    op.create_table(
        "domain_events",
        sa.Column("id", app.db.BigInt, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("data", app.types.JsonDoc, nullable=False),
        sa.Column("occurred_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_events")),
    )
    op.create_index("ix_domain_events_name_id", "domain_events", ["name", "id"])
    op.create_table(
        "event_receipts",
        sa.Column("subscriber", sa.String(64), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", "event_id", name=op.f("pk_event_receipts")),
    )
    outbox = sa.table("outbox_messages", sa.column("func", sa.String))
    for old, new in RENAMED_JOBS.items():
        op.execute(outbox.update().where(outbox.c.func == old).values(func=new))


def downgrade():
    outbox = sa.table("outbox_messages", sa.column("func", sa.String))
    for old, new in RENAMED_JOBS.items():
        op.execute(outbox.update().where(outbox.c.func == new).values(func=old))
    op.drop_table("event_receipts")
    op.drop_index("ix_domain_events_name_id", table_name="domain_events")
    op.drop_table("domain_events")
