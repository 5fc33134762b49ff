"""EBS-backed images and instances: root device type, an image's block device mappings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 05:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('root_device_type', sa.String(length=16), nullable=False,
                                   server_default='instance-store'))
        batch.add_column(sa.Column('root_device_name', sa.String(length=32), nullable=False,
                                   server_default='/dev/sda1'))
    with op.batch_alter_table('images') as batch:
        batch.add_column(sa.Column('root_device_type', sa.String(length=16), nullable=False,
                                   server_default='instance-store'))
        batch.add_column(sa.Column('block_devices_json', sa.Text(), nullable=False,
                                   server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('images') as batch:
        batch.drop_column('block_devices_json')
        batch.drop_column('root_device_type')
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('root_device_name')
        batch.drop_column('root_device_type')
