"""withdrawals, payouts, outbox

Revision ID: 0004_withdrawals
Revises: 0003_ledger
"""
from alembic import op
import sqlalchemy as sa
import app.db

revision = "0004_withdrawals"
down_revision = "0003_ledger"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
