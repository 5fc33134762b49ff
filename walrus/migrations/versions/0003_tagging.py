"""object tagging: the tags of each object version and of each multipart upload

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ('objects', 'object_versions', 'uploads')


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('tags', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, not a batch copy (see 0002).
    for table in TABLES:
        op.drop_column(table, 'tags')
