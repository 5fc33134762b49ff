"""The CC's first schema: nodes, their last instance reports, the scheduler's saved state.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 10:32:56.826742
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nodes',
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('node_id', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('missed_polls', sa.Integer(), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('resources_json', sa.Text(), nullable=True),
    sa.Column('idle_since', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('url', name=op.f('pk_nodes'))
    )
    op.create_table('scheduler_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_scheduler_state'))
    )
    op.create_table('instances',
    sa.Column('instance_id', sa.String(length=32), nullable=False),
    sa.Column('node_url', sa.String(length=512), nullable=False),
    sa.Column('report_json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['node_url'], ['nodes.url'], name=op.f('fk_instances_node_url_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id', name=op.f('pk_instances'))
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instances_node_url'), ['node_url'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_node_url'))

    op.drop_table('instances')
    op.drop_table('scheduler_state')
    op.drop_table('nodes')
