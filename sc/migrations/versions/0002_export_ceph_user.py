"""An export records the Ceph user a node connects as (the rbd export driver).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:10:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('exports') as batch:
        batch.add_column(sa.Column('user', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('exports') as batch:
        batch.drop_column('user')
