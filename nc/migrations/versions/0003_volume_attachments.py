"""EBS volumes attached to the node's instances

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 04:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'volume_attachments',
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.Column('volume_id', sa.String(length=32), nullable=False),
        sa.Column('prefix', sa.String(length=32), nullable=False),
        sa.Column('device', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('source_json', sa.Text(), nullable=False),
        sa.Column('attached_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('instance_id', 'volume_id', name=op.f('pk_volume_attachments')))
    with op.batch_alter_table('volume_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_attachments_prefix'), ['prefix'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volume_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_attachments_prefix'))
    op.drop_table('volume_attachments')
