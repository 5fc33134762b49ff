"""lifecycle: a bucket's lifecycle rules

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('buckets', sa.Column('lifecycle', sa.JSON(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, not a batch copy (see 0002).
    op.drop_column('buckets', 'lifecycle')
