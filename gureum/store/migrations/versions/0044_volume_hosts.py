"""volumes' and snapshots' host (where their file is)

Revision ID: 0044
Revises: 0040
Create Date: 2026-11-27 04:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0044'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty: the control host (rows made before hosts, or there).
    with op.batch_alter_table('volumes') as batch:
        batch.add_column(sa.Column('host_id', sa.String(length=32), nullable=True))
    with op.batch_alter_table('snapshots') as batch:
        batch.add_column(sa.Column('host_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('snapshots') as batch:
        batch.drop_column('host_id')
    with op.batch_alter_table('volumes') as batch:
        batch.drop_column('host_id')
