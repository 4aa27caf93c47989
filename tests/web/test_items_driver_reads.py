"""The items table read through psycopg (what production does: no statement listeners)
draws exactly the table SQLAlchemy's rows draw: rows, owner names, row actions, keyset
links. The rest of the suite reads through SQLAlchemy: the tests' write guard listens
to every statement, and their connections' sessions are not in UTC, either of which
sends table pages down SQLAlchemy's path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.core.sql import build_engine
from app.extensions import db
from app.repositories import driver_reads
from tests.conftest import _build_app, _rolled_back, login, make_settings
from tests.factories import make_role_accounts, seed_items

pytestmark = pytest.mark.postgres

URLS = [
    "/items",
    "/items?sort=price&dir=asc&page=2&per_page=10",
    "/items?sort=name&dir=desc&q=item&status=active",
]


def _region(html: str) -> str:
    start = html.index('id="items-table"')
    return html[start : html.index('name="csrf_token"', start)]


@pytest.fixture
def uncached_app(pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The PostgreSQL app as production connects (sessions in UTC: app/core/sql.py), with
    no statement listener and the region cache off, so every view reads its rows."""
    engine = build_engine(pg_url)
    settings = make_settings(tmp_path, database_url=pg_url, table_cache_ttl=0)
    yield from _rolled_back(engine, _build_app(settings))
    engine.dispose()


@pytest.mark.parametrize("url", URLS)
def test_the_table_through_the_driver_is_the_table_through_sqlalchemy(
    uncached_app: Flask, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with uncached_app.app_context(), db.transaction() as session:
        accounts = make_role_accounts(session)
    rows = [(f"item {n:02}", str(n), "active") for n in range(30)]
    seed_items(uncached_app, accounts["user"], rows)
    seed_items(uncached_app, accounts["admin"], [("admin item", "5", "active")])
    client: FlaskClient = uncached_app.test_client()
    login(client, "user@example.com")
    monkeypatch.setattr(driver_reads, "_READS", {})  # nothing learnt by earlier tests
    driver_pages: list[Any] = []
    cursor = driver_reads._cursor
    monkeypatch.setattr(driver_reads, "_cursor", lambda c: driver_pages.append(c) or cursor(c))

    # A page statement's first read is SQLAlchemy's (it learns the column types) ...
    through_sqlalchemy = _region(client.get(url).get_data(as_text=True))
    assert driver_pages == []
    # ... and the next through psycopg.
    through_driver = _region(client.get(url).get_data(as_text=True))
    assert len(driver_pages) == 1

    assert through_driver == through_sqlalchemy
    assert "item 0" in through_driver and 'href="/items/' in through_driver
