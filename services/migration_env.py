"""The body of every service's Alembic `env.py`: each one calls `run(metadata)`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from services.db import make_engine


def run(metadata: MetaData) -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as connection:
            _migrate(connection, metadata)
            connection.commit()
    else:
        _migrate(connection, metadata)


def _migrate(connection, metadata: MetaData) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
