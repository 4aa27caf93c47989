"""Alembic configuration built in code, so `flask db upgrade` and the tests share it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at migrations/ for this URL or open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def include_object_for(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """An autogenerate filter leaving other databases' indexes (Index.ddl_if) out."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "index" or reflected:
            return True
        wanted = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return wanted is None or wanted == dialect

    return include_object


def upgrade(
    url: str | None = None, *, connection: Connection | None = None, revision: str = "head"
) -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(url, connection), revision)


def downgrade(
    url: str | None = None, *, connection: Connection | None = None, revision: str = "-1"
) -> None:
    """Revert migrations down to `revision`."""
    command.downgrade(alembic_config(url, connection), revision)


def is_current(engine: Engine) -> bool:
    """Whether the database's schema is at the newest migration (False for an empty one)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
