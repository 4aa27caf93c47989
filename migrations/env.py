"""Alembic environment: runs against the app's DATABASE_URL or a connection handed in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.core.database import build_engine
from app.core.migrations import include_object_for
from app.models import Base
from app.settings import Settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),
    )


def run_migrations_offline() -> None:
    """Emit SQL without a database (alembic upgrade --sql)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection: the one passed in (tests, CLI) or a new engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = build_engine(_url())
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
