"""Alembic environment of the job store.

``SqlJobStore.migrate()`` builds the Alembic configuration in code and hands over its
open connection in ``config.attributes["connection"]``. For ad-hoc use (``alembic
revision --autogenerate``, offline SQL), ``sqlalchemy.url`` may be set instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from mpo_realtime.exports.jobstore import METADATA


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=METADATA)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=METADATA,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no connection and no sqlalchemy.url given to the migrations")
    engine = create_engine(url)
    try:
        with engine.begin() as owned:
            _run(owned)
    finally:
        engine.dispose()


_main()
