"""volumes and snapshots

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 04:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'volumes',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('size_gib', sa.Integer(), nullable=False),
        sa.Column('volume_type', sa.String(length=16), nullable=False),
        sa.Column('snapshot_id', sa.String(length=32), nullable=True),
        sa.Column('client_token', sa.String(length=64), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason_code', sa.String(length=64), nullable=True),
        sa.Column('reason_message', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=True),
        sa.Column('device', sa.String(length=32), nullable=True),
        sa.Column('attach_state', sa.String(length=16), nullable=True),
        sa.Column('attach_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attach_node', sa.String(length=255), nullable=True),
        sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
        sa.Column('force_detach', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_volumes_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_volumes')),
        sa.UniqueConstraint('account_id', 'client_token', name=op.f('uq_volumes_account_id')),
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volumes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volumes_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_volumes_instance_id'), ['instance_id'], unique=False)

    op.create_table(
        'snapshots',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('volume_id', sa.String(length=32), nullable=False),
        sa.Column('volume_size_gib', sa.Integer(), nullable=False),
        sa.Column('data_id', sa.String(length=32), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('reason_message', sa.Text(), nullable=True),
        sa.Column('consistency', sa.String(length=32), nullable=False),
        sa.Column('is_public', sa.Boolean(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_snapshots_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshots')),
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshots_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshots_data_id'), ['data_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshots_state'), ['state'], unique=False)

    op.create_table(
        'snapshot_permissions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('snapshot_id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(['snapshot_id'], ['snapshots.id'], ondelete='CASCADE',
                                name=op.f('fk_snapshot_permissions_snapshot_id_snapshots')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshot_permissions')),
        sa.UniqueConstraint('snapshot_id', 'account_id', name=op.f('uq_snapshot_permissions_snapshot_id')),
    )
    with op.batch_alter_table('snapshot_permissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshot_permissions_snapshot_id'), ['snapshot_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('snapshot_permissions')
    op.drop_table('snapshots')
    op.drop_table('volumes')
