"""metric series

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 12:07:36.671156
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gureum.store.models

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Points keep a series id instead of repeating the series' strings (263 bytes a row
    measured before, most of it namespace, name, dimensions and their index)."""
    op.create_table('metric_series',
    sa.Column('series_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('namespace', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('dimensions', sa.String(length=4096), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], ),
    sa.PrimaryKeyConstraint('series_id'),
    sa.UniqueConstraint('account_id', 'namespace', 'name', 'dimensions', 'unit')
    )
    op.execute("INSERT INTO metric_series (account_id, namespace, name, dimensions, unit) "
               "SELECT DISTINCT account_id, namespace, name, dimensions, unit FROM metric_points")
    op.create_table('metric_points_new',
    sa.Column('point_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('timestamp', gureum.store.models.UtcDateTime(), nullable=False),
    sa.Column('sample_count', sa.Double(), nullable=False),
    sa.Column('sum', sa.Double(), nullable=False),
    sa.Column('minimum', sa.Double(), nullable=False),
    sa.Column('maximum', sa.Double(), nullable=False),
    sa.Column('resolution', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['series_id'], ['metric_series.series_id'], ),
    sa.PrimaryKeyConstraint('point_id')
    )
    op.execute(
        "INSERT INTO metric_points_new (series_id, timestamp, sample_count, sum, minimum, "
        "maximum, resolution) SELECT s.series_id, p.timestamp, p.sample_count, p.sum, "
        "p.minimum, p.maximum, p.resolution FROM metric_points p JOIN metric_series s ON "
        "s.account_id = p.account_id AND s.namespace = p.namespace AND s.name = p.name AND "
        "s.dimensions = p.dimensions AND s.unit = p.unit")
    op.drop_table('metric_points')
    op.rename_table('metric_points_new', 'metric_points')
    op.create_index('ix_metric_points_series_time', 'metric_points', ['series_id', 'timestamp'])
    op.create_index('ix_metric_points_raw', 'metric_points', ['timestamp'],
                    sqlite_where=sa.text('resolution = 0'),
                    postgresql_where=sa.text('resolution = 0'))


def downgrade() -> None:
    raise NotImplementedError("metric points are not split back into repeated strings")
