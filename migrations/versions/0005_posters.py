"""poster templates and rendered poster cache

Revision ID: 0005_posters
Revises: 0004_withdrawals
"""
from alembic import op
import sqlalchemy as sa
import app.db

revision = "0005_posters"
down_revision = "0004_withdrawals"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
