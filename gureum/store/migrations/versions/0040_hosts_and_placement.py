"""hosts, join token, placement groups, instances' host

Revision ID: 0040
Revises: 0032
Create Date: 2026-11-26 23:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gureum.store.models

revision = '0040'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hosts',
    sa.Column('host_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=32), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('disk_gib', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('is_control', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('agent_url', sa.String(length=255), nullable=True),
    sa.Column('cert_fingerprint', sa.String(length=128), nullable=True),
    sa.Column('agent_secret', sa.String(length=128), nullable=True),
    sa.Column('last_heartbeat', gureum.store.models.UtcDateTime(), nullable=True),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('host_id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hosts_zone'), ['zone'], unique=False)
    op.create_table('host_join_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('placement_groups',
    sa.Column('group_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', gureum.store.models.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], ),
    sa.PrimaryKeyConstraint('group_id'),
    sa.UniqueConstraint('account_id', 'name')
    )
    with op.batch_alter_table('placement_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_groups_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('placement_group_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_instances_host_id'), ['host_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_host_id'))
        batch_op.drop_column('placement_group_id')
        batch_op.drop_column('host_id')
    with op.batch_alter_table('placement_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_groups_account_id'))
    op.drop_table('placement_groups')
    op.drop_table('host_join_tokens')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hosts_zone'))
    op.drop_table('hosts')
