"""Table pages read through psycopg: the same rows SQLAlchemy reads, the same errors, and
SQLAlchemy's path wherever the two could differ or someone watches the statements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    bindparam,
    create_engine,
    event,
    exc,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.core.breaker import CircuitBreaker
from app.core.listing import ListQuery, Seek
from app.core.sql import build_engine, watch_disconnects
from app.models import Item, User
from app.repositories import driver_reads
from app.repositories.driver_reads import fetch_rows
from app.repositories.items import ItemRepository
from tests.factories import make_user

pytestmark = pytest.mark.postgres

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def breaker() -> CircuitBreaker:
    return CircuitBreaker("database-under-test")


@pytest.fixture
def connection(pg_url: str, breaker: CircuitBreaker) -> Iterator[Connection]:
    """A connection of an engine built as the app builds it (no statement listeners), with
    thirty items in a transaction rolled back afterwards."""
    engine = build_engine(pg_url, breaker=breaker)
    watch_disconnects(breaker, engine)
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        named = make_user(session, "driver-reads@example.com", name="Dora")
        unnamed = make_user(session, "no-name@example.com")
        for n in range(30):
            session.add(
                Item(
                    owner_id=named.id if n % 3 else unnamed.id,
                    name=f"{'lamp' if n % 2 else 'desk'} {n:02d}",
                    price=Decimal(n * 7 % 11) + Decimal("0.25"),
                    status=("draft", "active", "archived")[n % 3],
                    created_at=START + timedelta(minutes=n % 10),  # ties: id breaks them
                    description="",
                )
            )
        session.flush()
        yield conn
        outer.rollback()
    engine.dispose()


QUERIES = [
    ListQuery(sort="created_at", direction="desc", page=1, per_page=10),
    ListQuery(sort="price", direction="asc", page=2, per_page=10),
    ListQuery(sort="name", direction="desc", page=1, per_page=25, q="lamp"),
    ListQuery(sort="id", direction="asc", page=1, per_page=10, filters={"status": "active"}),
]


def _page(connection: Connection, query: ListQuery, seek: Seek | None = None) -> list[Any]:
    repo = ItemRepository(Session(bind=connection))
    return repo.list_rows(repo.table_columns(), query, total=30, seek=seek).items


def _sqlalchemy_rows(connection: Connection, query: ListQuery, seek: Seek | None) -> list[Any]:
    """The same page through SQLAlchemy's path (a listener makes it take that path)."""
    event.listen(connection, "before_cursor_execute", _ignore)
    try:
        return _page(connection, query, seek)
    finally:
        event.remove(connection, "before_cursor_execute", _ignore)


def _ignore(*_args: Any) -> None:
    return None


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.sort}-{q.direction}-{q.page}")
def test_pages_read_through_the_driver_are_the_rows_sqlalchemy_reads(
    connection: Connection, query: ListQuery
) -> None:
    first = _page(connection, query)  # SQLAlchemy's path: it learns the column types
    again = _page(connection, query)  # the driver's
    expected = _sqlalchemy_rows(connection, query, None)

    assert again and [tuple(r) for r in again] == [tuple(r) for r in expected]
    assert [tuple(r) for r in first] == [tuple(r) for r in expected]
    assert type(again[0]).__name__ == "Row" and type(expected[0]).__name__ == "Row"
    assert isinstance(again[0], tuple) and not isinstance(expected[0], tuple)
    for row, same in zip(again, expected, strict=True):
        assert (row.id, row.name, row.price, row.owner_id) == (
            same.id,
            same.name,
            same.price,
            same.owner_id,
        )
        assert row.created_at.tzinfo is UTC and isinstance(row.price, Decimal)


def test_keyset_pages_bind_their_cursor_values(connection: Connection) -> None:
    query = ListQuery(sort="created_at", direction="desc", page=2, per_page=10)
    one = _page(connection, ListQuery(sort="created_at", direction="desc", page=1, per_page=10))
    seek = Seek("after", (one[-1].created_at, one[-1].id))
    _page(connection, query, seek)
    through_driver = _page(connection, query, seek)

    assert [r.id for r in through_driver] == [
        r.id for r in _sqlalchemy_rows(connection, query, seek)
    ]
    assert through_driver[0].id not in {r.id for r in one}


def test_a_watched_connection_sees_every_page_statement(connection: Connection) -> None:
    query = QUERIES[0]
    _page(connection, query)
    _page(connection, query)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        rows = _page(connection, query)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(rows) == 10 and len([s for s in seen if "FROM item" in s]) == 1


def test_unnamed_columns_keep_sqlalchemys_path(connection: Connection) -> None:
    unnamed = select(Item.id, Item.price * 2).where(Item.id > bindparam("after"))
    for _ in range(2):
        rows = fetch_rows(connection, unnamed, {"after": 0})
        assert len(rows) == 30 and not isinstance(rows[0], tuple)
    assert driver_reads._READS[unnamed] == {("postgresql", "psycopg", True): None}


def test_statements_finished_at_execution_keep_sqlalchemys_path(connection: Connection) -> None:
    by_ids = select(Item.id, Item.name).where(Item.id.in_(bindparam("ids", expanding=True)))
    ids = [r.id for r in _page(connection, QUERIES[0])][:3]
    for _ in range(2):
        rows = fetch_rows(connection, by_ids, {"ids": ids})
        assert sorted(r.id for r in rows) == sorted(ids)
    assert driver_reads._READS[by_ids] == {("postgresql", "psycopg", True): None}


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(connection: Connection) -> None:
    divide = select((literal_column("1") / bindparam("by", type_=User.id.type)).label("ratio"))
    assert fetch_rows(connection, divide, {"by": 1})[0][0] == 1
    savepoint = connection.begin_nested()
    with pytest.raises(exc.DataError):  # division by zero, from the driver's cursor
        fetch_rows(connection, divide, {"by": 0})
    savepoint.rollback()
    read = driver_reads._READS[divide][("postgresql", "psycopg", True)]
    assert isinstance(read, driver_reads._DriverRead)


def test_a_dropped_connection_invalidates_it_and_counts_against_the_breaker(pg_url: str) -> None:
    breaker = CircuitBreaker("database-under-test", threshold=1)
    engine = build_engine(pg_url, read_only=True, breaker=breaker)
    watch_disconnects(breaker, engine)
    statement = select(User.id, User.email).where(User.id > bindparam("after"))
    try:
        with engine.connect() as conn:
            fetch_rows(conn, statement, {"after": 0})
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with engine.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
            with pytest.raises(exc.OperationalError) as raised:
                fetch_rows(conn, statement, {"after": 0})
            assert raised.value.connection_invalidated
        assert breaker.state == "open"  # as when SQLAlchemy's own execute finds it gone
    finally:
        engine.dispose()


def test_one_statement_on_two_databases_is_read_as_each_reads_it(
    connection: Connection, sqlite_url: str
) -> None:
    """Page statements are shared by every engine in the process (tests run SQLite and
    PostgreSQL side by side)."""
    statement = select(User.id, User.email).where(User.id > bindparam("after"))
    for _ in range(2):
        assert fetch_rows(connection, statement, {"after": 0})
    lite = build_engine(sqlite_url)
    try:
        with lite.connect() as other:
            for _ in range(2):
                assert fetch_rows(other, statement, {"after": 0}) is not None
    finally:
        lite.dispose()
    assert driver_reads._READS[statement][("sqlite", "pysqlite", False)] is None
    assert isinstance(fetch_rows(connection, statement, {"after": 0})[0], tuple)


def test_keyword_and_private_column_names_keep_sqlalchemys_path(connection: Connection) -> None:
    odd = select(Item.id.label("from"), Item.name.label("_hidden")).where(Item.id > bindparam("a"))
    for _ in range(2):
        rows = fetch_rows(connection, odd, {"a": 0})
        assert len(rows) == 30 and rows[0]._mapping["from"] == rows[0][0]
    assert driver_reads._READS[odd] == {("postgresql", "psycopg", True): None}


def test_times_not_read_in_utc_keep_sqlalchemys_conversion(connection: Connection) -> None:
    connection.exec_driver_sql("SET LOCAL TIME ZONE 'Europe/Paris'")
    times = select(Item.id, Item.created_at).where(Item.id > bindparam("after"))
    for _ in range(2):
        rows = fetch_rows(connection, times, {"after": 0})
        assert rows[0].created_at.tzinfo is UTC
    assert driver_reads._READS[times] == {("postgresql", "psycopg", False): None}


def test_an_echoing_engine_logs_every_page_statement(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = build_engine(pg_url, read_only=True, echo=True)
    statement = select(User.id, User.email).where(User.id > bindparam("after"))
    try:
        with engine.connect() as conn, caplog.at_level("INFO", "sqlalchemy.engine"):
            for _ in range(3):
                fetch_rows(conn, statement, {"after": 0})
    finally:
        engine.dispose()
    assert len([r for r in caplog.records if "FROM user_account" in r.getMessage()]) == 3


def test_a_connection_outside_utc_does_not_decide_for_one_in_utc(
    connection: Connection, pg_url: str
) -> None:
    """What a statement's first read learns about times holds for sessions in the same
    time zone only: an engine elsewhere must not turn the driver off here."""
    times = select(type_coerce(func.now(), Item.created_at.type).label("at"))
    paris = create_engine(pg_url, connect_args={"options": "-c timezone=Europe/Paris"})
    try:
        with paris.connect() as other:
            for _ in range(2):
                assert fetch_rows(other, times, {})[0].at.tzinfo is UTC
    finally:
        paris.dispose()
    for _ in range(2):
        rows = fetch_rows(connection, times, {})
    assert isinstance(rows[0], tuple) and rows[0].at.tzinfo is UTC
    learnt = driver_reads._READS[times]
    assert learnt[("postgresql", "psycopg", False)] is None
    assert isinstance(learnt[("postgresql", "psycopg", True)], driver_reads._DriverRead)


def test_a_pooled_connection_keeps_one_reading_cursor(pg_url: str) -> None:
    """One cursor per pooled connection, reused by every page read on it, and replaced
    with the connection (nothing holds a closed connection alive)."""
    engine = build_engine(pg_url, read_only=True, pool_size=1, max_overflow=0)
    statement = select(User.id, User.email).where(User.id > bindparam("after"))
    try:
        with engine.connect() as conn:
            for _ in range(3):  # the first read is SQLAlchemy's
                fetch_rows(conn, statement, {"after": 0})
            first = conn.info[driver_reads._CURSOR]
        with engine.connect() as conn:
            fetch_rows(conn, statement, {"after": 0})
            assert conn.info[driver_reads._CURSOR] is first
            conn.invalidate()  # the connection is dropped and replaced
        with engine.connect() as conn:
            fetch_rows(conn, statement, {"after": 0})
            again = conn.info[driver_reads._CURSOR]
            assert again is not first and again.connection is conn.connection.driver_connection
        assert first.connection.closed
    finally:
        engine.dispose()
