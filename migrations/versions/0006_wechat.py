"""no schema change (an empty revision kept so that databases already stamped with it upgrade in order)

Revision ID: 0006_wechat
Revises: 0005_posters
"""
revision = "0006_wechat"
down_revision = "0005_posters"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
