"""orders, commissions, plans, grades, double-entry ledger

Revision ID: 0003_ledger
Revises: 0002_referrals
"""
from alembic import op
import sqlalchemy as sa
import app.db

revision = "0003_ledger"
down_revision = "0002_referrals"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
