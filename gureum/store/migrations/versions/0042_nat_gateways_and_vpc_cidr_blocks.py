"""nat gateways, vpc secondary cidr blocks, interface types

Revision ID: 0042
Revises: 0044
Create Date: 2026-11-27 04:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gureum.store.models

revision = '0042'
down_revision = '0044'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nat_gateways',
    sa.Column('nat_gateway_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('vpc_id', sa.String(length=32), nullable=False),
    sa.Column('subnet_id', sa.String(length=32), nullable=False),
    sa.Column('connectivity_type', sa.String(length=8), nullable=False),
    sa.Column('allocation_id', sa.String(length=32), nullable=True),
    sa.Column('eni_id', sa.String(length=32), nullable=True),
    sa.Column('private_ip', sa.String(length=15), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.Column('deleted_at', gureum.store.models.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], ),
    sa.PrimaryKeyConstraint('nat_gateway_id')
    )
    with op.batch_alter_table('nat_gateways', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nat_gateways_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nat_gateways_allocation_id'), ['allocation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nat_gateways_subnet_id'), ['subnet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nat_gateways_vpc_id'), ['vpc_id'], unique=False)
    op.create_table('vpc_cidr_blocks',
    sa.Column('association_id', sa.String(length=40), nullable=False),
    sa.Column('vpc_id', sa.String(length=32), nullable=False),
    sa.Column('cidr', sa.String(length=18), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['vpc_id'], ['vpcs.vpc_id'], ),
    sa.PrimaryKeyConstraint('association_id')
    )
    with op.batch_alter_table('vpc_cidr_blocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vpc_cidr_blocks_vpc_id'), ['vpc_id'], unique=False)
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interface_type', sa.String(length=24),
                                      server_default='interface', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.drop_column('interface_type')
    with op.batch_alter_table('vpc_cidr_blocks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vpc_cidr_blocks_vpc_id'))
    op.drop_table('vpc_cidr_blocks')
    with op.batch_alter_table('nat_gateways', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nat_gateways_vpc_id'))
        batch_op.drop_index(batch_op.f('ix_nat_gateways_subnet_id'))
        batch_op.drop_index(batch_op.f('ix_nat_gateways_allocation_id'))
        batch_op.drop_index(batch_op.f('ix_nat_gateways_account_id'))
    op.drop_table('nat_gateways')
