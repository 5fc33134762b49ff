"""versioning: a bucket's versioning state, each object's version id and delete-marker flag,
and the table of noncurrent versions

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('versioning', sa.String(length=16), nullable=True))
    # Every object stored so far is its key's one version, "null", as in a bucket never versioned.
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_id', sa.String(length=64), nullable=False,
                                      server_default='null'))
        batch_op.add_column(sa.Column('delete_marker', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table('object_versions',
    sa.Column('bucket', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('version_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('noncurrent_since', sa.DateTime(), nullable=False),
    sa.Column('delete_marker', sa.Boolean(), nullable=False, server_default=sa.false()),
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
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_object_versions_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'key', 'version_id', name=op.f('pk_object_versions'))
    )
    op.create_index('ix_object_versions_order', 'object_versions', ['bucket', 'key', 'seq'])


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: a batch drops and
    # recreates the table, and dropping `buckets` with foreign keys on would cascade into
    # every object row. Older versions go; each key keeps its current version.
    op.drop_index('ix_object_versions_order', table_name='object_versions')
    op.drop_table('object_versions')
    op.execute("DELETE FROM objects WHERE delete_marker")
    op.drop_column('objects', 'delete_marker')
    op.drop_column('objects', 'version_id')
    op.drop_column('buckets', 'versioning')
