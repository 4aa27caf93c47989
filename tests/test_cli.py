"""The command line: migrations, idempotent seeding, account creation with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, inspect, text

from app import create_app
from app.extensions import db
from app.models import User
from app.repositories.items import ItemRepository
from app.repositories.users import UserRepository
from tests.conftest import login, make_settings
from tests.faults.databases import own_database


def test_db_upgrade_builds_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = create_app(make_settings(tmp_path, database_url=url))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "user_account" in inspect(create_engine(url)).get_table_names()


def test_commands_on_an_unmigrated_database_say_how_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    runner = create_app(make_settings(tmp_path, database_url=url)).test_cli_runner()
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email\nnew@example.com\n", encoding="utf-8")
    for args in (
        ["users", "create", "--email", "new@example.com", "--password", "long-enough-1"],
        ["users", "import", str(csv_file)],
        ["seed", "--items", "0"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert "flask --app app db upgrade" in result.output, result.output
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output


def test_seed_is_idempotent(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "--items", "250", "--users", "2"])
    assert first.exit_code == 0, first.output
    assert "admin@example.com" in first.output and "demo-password" in first.output
    second = runner.invoke(args=["seed", "--items", "250", "--users", "2"])
    assert "Seeded 0 users and 0 items" in second.output
    with app.app_context():
        assert ItemRepository(db.session).count_all() == 250
        assert UserRepository(db.session).count_all() == 5
        roles = {u.role for u in db.session.query(User).all()}
        assert roles == {"admin", "user", "guest"}


def test_users_create(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "users",
            "create",
            "--email",
            "New@Example.com",
            "--password",
            "long-enough",
            "--role",
            "admin",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = UserRepository(db.session).by_email("new@example.com")
        assert user is not None and user.role == "admin" and user.password_hash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--password", "long-enough"], "email"),
        (["--email", "a@example.com", "--password", "short"], "at least 8"),
        (
            ["--email", "a@example.com", "--password", "long-enough", "--role", "root"],
            "'root' is not one of",
        ),
    ],
)
def test_users_create_rejects_bad_input(app: Flask, args: list[str], message: str) -> None:
    result = app.test_cli_runner().invoke(args=["users", "create", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_users_create_duplicate_exits_non_zero(app: Flask) -> None:
    runner = app.test_cli_runner()
    args = ["users", "create", "--email", "dup@example.com", "--password", "long-enough"]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=[*args[:3], "DUP@example.com", *args[4:]])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_seeding_drops_cached_tables_of_running_servers(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed", "--items", "0"]).exit_code == 0
    client = app.test_client()
    login(client, "user@example.com", "demo-password")
    assert "No items yet" in client.get("/items").get_data(as_text=True)  # cached: none
    assert runner.invoke(args=["seed", "--items", "30"]).exit_code == 0  # COPY, no ORM rows
    assert "1–25 of 30 items" in client.get("/items").get_data(as_text=True)


@pytest.mark.postgres
def test_seeding_postgresql_leaves_the_items_vacuumed_for_index_only_scans(
    tmp_path: Path,
) -> None:
    """COPY leaves rows not yet all-visible: without a VACUUM every index-only scan (a
    search sorted by name) reads the heap too, until autovacuum, if it is on, gets there."""
    with own_database("seedvacuum") as url:
        app = create_app(make_settings(tmp_path, database_url=url))
        result = app.test_cli_runner().invoke(args=["seed", "--items", "300", "--users", "0"])
        assert result.exit_code == 0, result.output
        engine = create_engine(url)
        with engine.connect() as connection:
            visible = connection.scalar(
                text("SELECT relallvisible FROM pg_class WHERE relname = 'item'")
            )
        engine.dispose()
        db.dispose(app)
        assert visible and visible > 0
