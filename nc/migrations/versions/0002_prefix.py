"""One database per NC process: each instance names its node by URL prefix

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 03:05:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows of a single-node database belong to its one node, whose prefix is "".
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefix', sa.String(length=32), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_instances_prefix'), ['prefix'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_prefix'))
        batch_op.drop_column('prefix')
