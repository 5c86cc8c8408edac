"""referral codes, scans, binding history, stores, teams

Revision ID: 0002_referrals
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa
import app.db
import app.types  # noqa: F401
from sqlalchemy.dialects import postgresql  # noqa: F401

revision = "0002_referrals"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('referral_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('permanent_qr_used', sa.Integer(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_settings'))
    )
    op.create_table('stores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stores'))
    )
    op.create_table('partner_applications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_partner_applications_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_applications'))
    )
    op.create_index('uq_partner_application_pending', 'partner_applications', ['member_id'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table('partners',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('since', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_partners_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_partners'))
    )
    op.create_table('teams',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('captain_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('archived_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['captain_id'], ['members.id'], name=op.f('fk_teams_captain_id_members')),
    sa.ForeignKeyConstraint(['created_by'], ['operators.id'], name=op.f('fk_teams_created_by_operators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams'))
    )
    op.create_index(op.f('ix_teams_captain_id'), 'teams', ['captain_id'], unique=False)
    op.create_index('uq_teams_active_name', 'teams', ['name'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
    op.create_table('referral_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scene', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('label', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('oa_ticket', sa.String(length=256), nullable=True),
    sa.Column('oa_url', sa.String(length=256), nullable=True),
    sa.Column('oa_permanent', sa.Boolean(), nullable=False),
    sa.Column('oa_expires_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['members.id'], name=op.f('fk_referral_codes_owner_id_members')),
    sa.ForeignKeyConstraint(['referrer_id'], ['members.id'], name=op.f('fk_referral_codes_referrer_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_referral_codes_store_id_stores')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_referral_codes_team_id_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_codes')),
    sa.UniqueConstraint('scene', name=op.f('uq_referral_codes_scene'))
    )
    op.create_index(op.f('ix_referral_codes_owner_id'), 'referral_codes', ['owner_id'], unique=False)
    op.create_index(op.f('ix_referral_codes_team_id'), 'referral_codes', ['team_id'], unique=False)
    op.create_table('staff_assignments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.String(length=16), nullable=False),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_staff_assignments_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_staff_assignments_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_assignments'))
    )
    op.create_index(op.f('ix_staff_assignments_store_id'), 'staff_assignments', ['store_id'], unique=False)
    op.create_index('uq_staff_current', 'staff_assignments', ['member_id'], unique=True, postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
    op.create_table('code_images',
    sa.Column('code_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('source_ref', sa.String(length=256), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name=op.f('fk_code_images_code_id_referral_codes')),
    sa.PrimaryKeyConstraint('code_id', 'channel', name=op.f('pk_code_images'))
    )
    op.create_table('pending_referrals',
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('touched_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name=op.f('fk_pending_referrals_code_id_referral_codes')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_pending_referrals_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_pending_referrals'))
    )
    op.create_table('referral_bindings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('previous_referrer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('code_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name=op.f('fk_referral_bindings_code_id_referral_codes')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_referral_bindings_member_id_members')),
    sa.ForeignKeyConstraint(['previous_referrer_id'], ['members.id'], name=op.f('fk_referral_bindings_previous_referrer_id_members')),
    sa.ForeignKeyConstraint(['referrer_id'], ['members.id'], name=op.f('fk_referral_bindings_referrer_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_referral_bindings_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_bindings'))
    )
    op.create_index('ix_bindings_member', 'referral_bindings', ['member_id'], unique=False)
    op.create_index('ix_bindings_referrer_created', 'referral_bindings', ['referrer_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_referral_bindings_store_id'), 'referral_bindings', ['store_id'], unique=False)
    op.create_table('touches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('scene', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('new_follower', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=256), nullable=True),
    sa.Column('event_key', sa.String(length=96), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name=op.f('fk_touches_code_id_referral_codes')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_touches_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touches'))
    )
    op.create_index('ix_touches_code_created', 'touches', ['code_id', 'created_at'], unique=False)
    op.create_index('ix_touches_member', 'touches', ['member_id'], unique=False)
    op.create_index('uq_touches_event_key', 'touches', ['event_key'], unique=True, postgresql_where=sa.text('event_key IS NOT NULL'), sqlite_where=sa.text('event_key IS NOT NULL'))
    # ### end Alembic commands ###


def downgrade():
    op.drop_index('uq_touches_event_key', table_name='touches', postgresql_where=sa.text('event_key IS NOT NULL'), sqlite_where=sa.text('event_key IS NOT NULL'))
    op.drop_index('ix_touches_member', table_name='touches')
    op.drop_index('ix_touches_code_created', table_name='touches')
    op.drop_table('touches')
    op.drop_index(op.f('ix_referral_bindings_store_id'), table_name='referral_bindings')
    op.drop_index('ix_bindings_referrer_created', table_name='referral_bindings')
    op.drop_index('ix_bindings_member', table_name='referral_bindings')
    op.drop_table('referral_bindings')
    op.drop_table('pending_referrals')
    op.drop_table('code_images')
    op.drop_index('uq_staff_current', table_name='staff_assignments', postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
    op.drop_index(op.f('ix_staff_assignments_store_id'), table_name='staff_assignments')
    op.drop_table('staff_assignments')
    op.drop_index(op.f('ix_referral_codes_team_id'), table_name='referral_codes')
    op.drop_index(op.f('ix_referral_codes_owner_id'), table_name='referral_codes')
    op.drop_table('referral_codes')
    op.drop_index('uq_teams_active_name', table_name='teams', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
    op.drop_index(op.f('ix_teams_captain_id'), table_name='teams')
    op.drop_table('teams')
    op.drop_table('partners')
    op.drop_index('uq_partner_application_pending', table_name='partner_applications', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.drop_table('partner_applications')
    op.drop_table('stores')
    op.drop_table('referral_settings')
    # ### end Alembic commands ###
