"""instance retry backoff

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 08:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gureum.store.models import UtcDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')
