"""The items table read through psycopg (what production does: no statement listeners)
draws exactly the table SQLAlchemy's rows draw: rows, owner names, row actions, keyset
links. The rest of the suite reads through SQLAlchemy (the tests' write guard listens
to every statement, which sends table pages down SQLAlchemy's path)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.repositories import driver_reads
from tests.conftest import _refuse_writes_in_safe_requests, login
from tests.factories import seed_items

pytestmark = pytest.mark.postgres

URLS = [
    "/items",
    "/items?sort=price&dir=asc&page=2&per_page=10",
    "/items?sort=name&dir=desc&q=item&status=active",
]


def _region(html: str) -> str:
    start = html.index('id="items-table"')
    return html[start : html.index('name="csrf_token"', start)]


@pytest.mark.parametrize("url", URLS)
def test_the_table_through_the_driver_is_the_table_through_sqlalchemy(
    pg_app: Flask, pg_engine: Engine, accounts: dict[str, int], url: str
) -> None:
    seed_items(pg_app, accounts["user"], [(f"item {n:02}", str(n), "active") for n in range(30)])
    seed_items(pg_app, accounts["admin"], [("admin item", "5", "active")])
    client: FlaskClient = pg_app.test_client()
    login(client, "user@example.com")
    through_sqlalchemy = _region(client.get(url).get_data(as_text=True))

    event.remove(pg_engine, "before_cursor_execute", _refuse_writes_in_safe_requests)
    try:
        client.get(url)  # the statement's first read there: SQLAlchemy's, to learn its columns
        through_driver = _region(client.get(url).get_data(as_text=True))
    finally:
        event.listen(pg_engine, "before_cursor_execute", _refuse_writes_in_safe_requests)

    assert any(
        isinstance(read, driver_reads._DriverRead)
        for known in driver_reads._READS.values()
        for read in known.values()
    )
    assert through_driver == through_sqlalchemy
    assert "item 0" in through_driver and 'href="/items/' in through_driver
