"""withdrawals, payouts, outbox

Revision ID: 0004_withdrawals
Revises: 0003_ledger
"""
from alembic import op
import sqlalchemy as sa
import app.db
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0004_withdrawals"
down_revision = "0003_ledger"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('func', sa.String(length=128), nullable=False),
    sa.Column('args', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('queue', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('available_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('enqueued_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dead', sa.Boolean(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    op.create_index('ix_outbox_messages_due', 'outbox_messages', ['available_at'], unique=False, postgresql_where=sa.text('done_at IS NULL'), sqlite_where=sa.text('done_at IS NULL'))
    op.create_index('uq_outbox_messages_live_key', 'outbox_messages', ['dedupe_key'], unique=True, postgresql_where=sa.text('done_at IS NULL'), sqlite_where=sa.text('done_at IS NULL'))
    op.create_table('payout_control',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_reason', sa.String(length=255), nullable=False),
    sa.Column('paused_by', sa.String(length=64), nullable=False),
    sa.Column('paused_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('daily_total_limit_fen', sa.BigInteger(), nullable=True),
    sa.Column('failure_rate_limit_bps', sa.Integer(), nullable=True),
    sa.Column('failure_window_minutes', sa.Integer(), nullable=False),
    sa.Column('failure_min_count', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('day_submitted_fen', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_control'))
    )
    op.create_table('withdrawal_rules',
    sa.Column('grade_code', sa.String(length=32), nullable=False),
    sa.Column('min_fen', sa.BigInteger(), nullable=False),
    sa.Column('max_fen', sa.BigInteger(), nullable=False),
    sa.Column('daily_max_fen', sa.BigInteger(), nullable=False),
    sa.Column('daily_count', sa.Integer(), nullable=False),
    sa.Column('fee_bps', sa.Integer(), nullable=False),
    sa.Column('fee_fixed_fen', sa.BigInteger(), nullable=False),
    sa.Column('tax_threshold_fen', sa.BigInteger(), nullable=True),
    sa.Column('tax_bps', sa.Integer(), nullable=False),
    sa.Column('real_name_from_fen', sa.BigInteger(), nullable=False),
    sa.Column('auto_approve_below_fen', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('grade_code', name=op.f('pk_withdrawal_rules'))
    )
    op.create_table('withdrawals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_fen', sa.BigInteger(), nullable=False),
    sa.Column('tax_fen', sa.BigInteger(), nullable=False),
    sa.Column('net_fen', sa.BigInteger(), nullable=False),
    sa.Column('grade_code', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('out_bill_no', sa.String(length=32), nullable=False),
    sa.Column('openid', sa.String(length=128), nullable=False),
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('remark', sa.String(length=32), nullable=False),
    sa.Column('user_name_enc', sa.String(length=512), nullable=True),
    sa.Column('transfer_bill_no', sa.String(length=64), nullable=True),
    sa.Column('package_info', sa.String(length=1024), nullable=True),
    sa.Column('submit_attempts', sa.Integer(), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('last_submit_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('REVIEWING', 'APPROVED', 'SUBMITTING', 'ACCEPTED', 'PROCESSING', 'WAIT_USER_CONFIRM', 'TRANSFERING', 'CANCELING', 'SUCCESS', 'FAIL', 'CANCELLED', 'REJECTED')", name=op.f('ck_withdrawals_state')),
    sa.CheckConstraint('amount_fen > 0 AND fee_fen >= 0 AND tax_fen >= 0 AND net_fen >= 10 AND amount_fen = fee_fen + tax_fen + net_fen', name=op.f('ck_withdrawals_amounts')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_withdrawals_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_withdrawals')),
    sa.UniqueConstraint('member_id', 'idempotency_key', name=op.f('uq_withdrawals_member_id_idempotency_key')),
    sa.UniqueConstraint('out_bill_no', name=op.f('uq_withdrawals_out_bill_no'))
    )
    op.create_index(op.f('ix_withdrawals_finished_at'), 'withdrawals', ['finished_at'], unique=False)
    op.create_index('ix_withdrawals_member_created', 'withdrawals', ['member_id', 'created_at'], unique=False)
    op.create_index('ix_withdrawals_state', 'withdrawals', ['state'], unique=False)
    op.create_table('withdrawal_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('withdrawal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['withdrawal_id'], ['withdrawals.id'], name=op.f('fk_withdrawal_events_withdrawal_id_withdrawals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_withdrawal_events'))
    )
    op.create_index(op.f('ix_withdrawal_events_withdrawal_id'), 'withdrawal_events', ['withdrawal_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_withdrawal_events_withdrawal_id'), table_name='withdrawal_events')
    op.drop_table('withdrawal_events')
    op.drop_index('ix_withdrawals_state', table_name='withdrawals')
    op.drop_index('ix_withdrawals_member_created', table_name='withdrawals')
    op.drop_index(op.f('ix_withdrawals_finished_at'), table_name='withdrawals')
    op.drop_table('withdrawals')
    op.drop_table('withdrawal_rules')
    op.drop_table('payout_control')
    op.drop_index('uq_outbox_messages_live_key', table_name='outbox_messages', postgresql_where=sa.text('done_at IS NULL'), sqlite_where=sa.text('done_at IS NULL'))
    op.drop_index('ix_outbox_messages_due', table_name='outbox_messages', postgresql_where=sa.text('done_at IS NULL'), sqlite_where=sa.text('done_at IS NULL'))
    op.drop_table('outbox_messages')
