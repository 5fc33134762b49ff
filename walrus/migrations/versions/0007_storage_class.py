"""storage class: of each object version and of each multipart upload

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ('objects', 'object_versions', 'uploads')


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('storage_class', sa.String(length=32), nullable=False,
                                       server_default='STANDARD'))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, not a batch copy (see 0002).
    for table in TABLES:
        op.drop_column(table, 'storage_class')
