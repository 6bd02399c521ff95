"""network interfaces: one row per ENI, the primary one of every instance backfilled

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-26 23:40:00
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

import gureum.store.models

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def _derived(prefix: str, instance_id: str) -> str:
    """ids.derived, copied: a migration must not change when the code does."""
    return f"{prefix}-" + hashlib.sha256(instance_id.encode()).hexdigest()[:17]


def _mac(private_ip: str) -> str:
    octets = [int(o) for o in private_ip.split(".")]
    return "0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}".format(0x31, *octets)


def upgrade() -> None:
    table = op.create_table('network_interfaces',
    sa.Column('eni_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('vpc_id', sa.String(length=32), nullable=False),
    sa.Column('subnet_id', sa.String(length=32), nullable=False),
    sa.Column('availability_zone', sa.String(length=32), nullable=False),
    sa.Column('private_ip', sa.String(length=15), nullable=False),
    sa.Column('secondary_ips', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('security_group_ids', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), server_default='', nullable=False),
    sa.Column('source_dest_check', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('mac_address', sa.String(length=17), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('instance_id', sa.String(length=32), nullable=True),
    sa.Column('device_index', sa.Integer(), nullable=True),
    sa.Column('attachment_id', sa.String(length=40), nullable=True),
    sa.Column('attach_time', gureum.store.models.UtcDateTime(), nullable=True),
    sa.Column('delete_on_termination', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], ),
    sa.PrimaryKeyConstraint('eni_id'),
    sa.UniqueConstraint('attachment_id')
    )
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_interfaces_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_interfaces_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_interfaces_subnet_id'), ['subnet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_interfaces_vpc_id'), ['vpc_id'], unique=False)

    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('eni_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('private_ip', sa.String(length=15), nullable=True))
        batch_op.create_index(batch_op.f('ix_addresses_eni_id'), ['eni_id'], unique=False)

    # The primary interface of every instance that is not terminated, with the id and
    # attachment id the API derived from the instance before this table existed.
    instances = sa.table('instances', *(sa.column(c) for c in (
        'instance_id', 'account_id', 'vpc_id', 'subnet_id', 'availability_zone', 'private_ip',
        'state')), sa.column('security_group_ids', sa.JSON()),
        sa.column('launch_time', gureum.store.models.UtcDateTime()))
    rows = op.get_bind().execute(sa.select(instances).where(
        instances.c.state != 'terminated')).mappings().all()
    if rows:
        op.bulk_insert(table, [{
            'eni_id': _derived('eni', r['instance_id']), 'account_id': r['account_id'],
            'vpc_id': r['vpc_id'], 'subnet_id': r['subnet_id'],
            'availability_zone': r['availability_zone'], 'private_ip': r['private_ip'],
            'secondary_ips': [], 'security_group_ids': list(r['security_group_ids'] or []),
            'description': '', 'source_dest_check': True, 'mac_address': _mac(r['private_ip']),
            'status': 'in-use', 'instance_id': r['instance_id'], 'device_index': 0,
            'attachment_id': _derived('eni-attach', r['instance_id']),
            'attach_time': r['launch_time'], 'delete_on_termination': True,
            'created_at': r['launch_time']} for r in rows])


def downgrade() -> None:
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addresses_eni_id'))
        batch_op.drop_column('private_ip')
        batch_op.drop_column('eni_id')
    with op.batch_alter_table('network_interfaces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_interfaces_vpc_id'))
        batch_op.drop_index(batch_op.f('ix_network_interfaces_subnet_id'))
        batch_op.drop_index(batch_op.f('ix_network_interfaces_instance_id'))
        batch_op.drop_index(batch_op.f('ix_network_interfaces_account_id'))
    op.drop_table('network_interfaces')
