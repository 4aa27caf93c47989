"""Migrations build the schema the models describe, on both databases, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from app.core import migrations
from app.core.migrations import include_object_for
from app.models import Base


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object_for(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, Base.metadata))


def test_sqlite_upgrade_matches_models(sqlite_template: Path) -> None:
    engine = create_engine(f"sqlite:///{sqlite_template}")
    assert _diff(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_postgres_upgrade_matches_models(pg_engine: Engine) -> None:
    assert _diff(pg_engine) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    migrations.upgrade(url)
    migrations.downgrade(url, revision="base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(url)
    assert {"user_account", "item", "audit_log"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_single_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1
