"""poster templates and rendered poster cache

Revision ID: 0005_posters
Revises: 0004_withdrawals
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy.dialects import postgresql

revision = "0005_posters"
down_revision = "0004_withdrawals"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "poster_templates",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poster_templates")),
    )
    op.create_table(
        "poster_backgrounds",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_poster_backgrounds")),
    )
    op.create_table(
        "poster_template_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("template_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("spec_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["poster_templates.id"],
                                name=op.f("fk_poster_template_versions_template_id_poster_templates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poster_template_versions")),
        sa.UniqueConstraint("template_id", "version", name=op.f("uq_poster_template_versions_template_id_version")),
    )
    op.create_table(
        "poster_renders",
        sa.Column("id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("template_version_id", ID, nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("poster_key", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("avatar_fallback", sa.Boolean(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_poster_renders_member_id_members")),
        sa.ForeignKeyConstraint(["template_version_id"], ["poster_template_versions.id"],
                                name=op.f("fk_poster_renders_template_version_id_poster_template_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poster_renders")),
        sa.UniqueConstraint("request_fingerprint", name=op.f("uq_poster_renders_request_fingerprint")),
    )
    op.create_index("ix_poster_renders_member_version", "poster_renders", ["member_id", "template_version_id"],
                    unique=False)


def downgrade():
    op.drop_index("ix_poster_renders_member_version", table_name="poster_renders")
    op.drop_table("poster_renders")
    op.drop_table("poster_template_versions")
    op.drop_table("poster_backgrounds")
    op.drop_table("poster_templates")
