"""cluster uploads: a multipart upload mapped onto its S3 cluster's (walrus/s3_multipart.py)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('uploads', sa.Column('blob_id', sa.String(length=64), nullable=True))
    op.add_column('uploads', sa.Column('cluster_upload_id', sa.String(length=256),
                                       nullable=True))
    op.add_column('parts', sa.Column('cluster_etag', sa.String(length=256), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, not a batch copy (see 0002).
    op.drop_column('parts', 'cluster_etag')
    op.drop_column('uploads', 'cluster_upload_id')
    op.drop_column('uploads', 'blob_id')
