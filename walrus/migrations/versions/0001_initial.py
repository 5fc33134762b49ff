"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-25 10:32:50.201331
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('buckets',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('owner_name', sa.String(length=128), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('acl', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_buckets'))
    )
    with op.batch_alter_table('buckets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buckets_owner_id'), ['owner_id'], unique=False)

    op.create_table('objects',
    sa.Column('bucket', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('content_type', sa.String(length=256), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('checksums', sa.JSON(), nullable=False),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('parts_count', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('owner_name', sa.String(length=128), nullable=False),
    sa.Column('acl', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_objects_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'key', name=op.f('pk_objects'))
    )
    op.create_table('uploads',
    sa.Column('upload_id', sa.String(length=64), nullable=False),
    sa.Column('bucket', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('initiated', sa.DateTime(), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('owner_name', sa.String(length=128), nullable=False),
    sa.Column('content_type', sa.String(length=256), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('acl', sa.JSON(), nullable=False),
    sa.Column('checksum_algorithm', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_uploads_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', name=op.f('pk_uploads'))
    )
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploads_bucket'), ['bucket'], unique=False)

    op.create_table('parts',
    sa.Column('upload_id', sa.String(length=64), nullable=False),
    sa.Column('part_number', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('blob_id', sa.String(length=64), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('checksums', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['upload_id'], ['uploads.upload_id'], name=op.f('fk_parts_upload_id_uploads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', 'part_number', name=op.f('pk_parts'))
    )


def downgrade() -> None:
    op.drop_table('parts')
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_bucket'))

    op.drop_table('uploads')
    op.drop_table('objects')
    with op.batch_alter_table('buckets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buckets_owner_id'))

    op.drop_table('buckets')
