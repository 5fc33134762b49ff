"""a zone's cluster and storage controllers on other hosts (eucasim register-cluster|register-sc)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'zone_services',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_zone_services')),
        sa.UniqueConstraint('type', 'zone', name=op.f('uq_zone_services_type')),
    )


def downgrade() -> None:
    op.drop_table('zone_services')
