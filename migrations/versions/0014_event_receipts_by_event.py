"""event receipts by event: the retention job deletes an old event's receipts with it

Revision ID: 0014_event_receipts_by_event
Revises: 0013_prizes_badges
"""
from alembic import op

revision = "0014_event_receipts_by_event"
down_revision = "0013_prizes_badges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_receipts_event_id", "event_receipts", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_receipts_event_id", table_name="event_receipts")
