"""wechat adapter state (subscribe consents, push log)

Revision ID: 0006_wechat
Revises: 0005_posters
"""
from alembic import op
import sqlalchemy as sa
import app.db

revision = "0006_wechat"
down_revision = "0005_posters"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
