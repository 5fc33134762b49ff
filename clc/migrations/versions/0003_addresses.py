"""elastic addresses

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'addresses',
        sa.Column('public_ip', sa.String(length=45), nullable=False),
        sa.Column('allocation_id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('domain', sa.String(length=16), nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=True),
        sa.Column('association_id', sa.String(length=32), nullable=True),
        sa.Column('allocated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_addresses_account_id_accounts')),
        sa.PrimaryKeyConstraint('public_ip', name=op.f('pk_addresses')),
        sa.UniqueConstraint('allocation_id', name=op.f('uq_addresses_allocation_id')),
    )
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addresses_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addresses_instance_id'), ['instance_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addresses_instance_id'))
        batch_op.drop_index(batch_op.f('ix_addresses_account_id'))
    op.drop_table('addresses')
