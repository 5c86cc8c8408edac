"""referral codes, scans, binding history, stores

Revision ID: 0002_referrals
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa
import app.db

revision = "0002_referrals"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
