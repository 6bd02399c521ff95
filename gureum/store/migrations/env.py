"""Alembic environment: runs on the connection the Store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from gureum.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic revision --autogenerate` from the command line
    connection = create_engine(config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
