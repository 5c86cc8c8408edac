"""index bindings by code: a code's "binds" count the bindings made through it, not its touches

Revision ID: 0009_binding_code_index
Revises: 0008_downline_names
"""
from alembic import op

revision = "0009_binding_code_index"
down_revision = "0008_downline_names"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_bindings_code_created", "referral_bindings", ["code_id", "created_at"], unique=False)


def downgrade():
    op.drop_index("ix_bindings_code_created", table_name="referral_bindings")
