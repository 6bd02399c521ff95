"""ipv6: VPC /56, subnet /64 and AssignIpv6AddressOnCreation, interface IPv6 addresses,
egress-only internet gateways, IPv6 route destinations

Revision ID: 0045
Revises: 0042
Create Date: 2026-11-27 04:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gureum.store.models

revision = '0045'
down_revision = '0042'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('egress_only_internet_gateways',
    sa.Column('gateway_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('vpc_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], ),
    sa.PrimaryKeyConstraint('gateway_id')
    )
    with op.batch_alter_table('egress_only_internet_gateways', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_egress_only_internet_gateways_account_id'),
                              ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_egress_only_internet_gateways_vpc_id'),
                              ['vpc_id'], unique=False)
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.alter_column('destination', existing_type=sa.String(length=18),
                              type_=sa.String(length=43), existing_nullable=False)
    with op.batch_alter_table('vpcs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ipv6_cidr', sa.String(length=43), nullable=True))
        batch_op.add_column(sa.Column('ipv6_association_id', sa.String(length=40),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_vpcs_ipv6_cidr'), ['ipv6_cidr'])
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ipv6_cidr', sa.String(length=43), nullable=True))
        batch_op.add_column(sa.Column('ipv6_association_id', sa.String(length=40),
                                      nullable=True))
        batch_op.add_column(sa.Column('assign_ipv6_on_creation', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ipv6_addresses', sa.JSON(), server_default='[]',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.alter_column('destination', existing_type=sa.String(length=43),
                              type_=sa.String(length=18), existing_nullable=False)
    with op.batch_alter_table('egress_only_internet_gateways', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_egress_only_internet_gateways_vpc_id'))
        batch_op.drop_index(batch_op.f('ix_egress_only_internet_gateways_account_id'))
    op.drop_table('egress_only_internet_gateways')
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.drop_column('ipv6_addresses')
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.drop_column('assign_ipv6_on_creation')
        batch_op.drop_column('ipv6_association_id')
        batch_op.drop_column('ipv6_cidr')
    with op.batch_alter_table('vpcs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_vpcs_ipv6_cidr'), type_='unique')
        batch_op.drop_column('ipv6_association_id')
        batch_op.drop_column('ipv6_cidr')
