"""The Database extension on real PostgreSQL: the read-only pool for safe requests and
the idle ping that replaces dead pooled connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core import sql
from app.core.listing import ListQuery
from app.extensions import db
from app.policy import policy
from app.repositories.items import ItemRepository
from app.services.items import export_rows, table_page
from tests.conftest import _build_app, make_settings


@pytest.fixture
def real_pg_app(pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on the run's database with its own pools (no per-test transaction)."""
    app = _build_app(make_settings(tmp_path, database_url=pg_url))
    yield app
    db.dispose(app)


def _insert_user(email: str) -> None:
    db.session.execute(
        text(
            "INSERT INTO user_account (email, name, role, is_active, auth_epoch)"
            " VALUES (:e, 'x', 'user', true, 0)"
        ),
        {"e": email},
    )


@contextmanager
def committed_items(app: Flask, email: str, name_sql: str, count: int) -> Iterator[int]:
    """A committed owner (its id) with `count` items named by `name_sql` over n = 1..count,
    priced n; the owner and its items are deleted afterwards."""
    with app.app_context():
        _insert_user(email)
        owner = db.session.execute(
            text("SELECT id FROM user_account WHERE email = :e"), {"e": email}
        ).scalar_one()
        db.session.execute(
            text(
                "INSERT INTO item (owner_id, name, description, status, price)"
                f" SELECT :o, {name_sql}, '', 'draft', n FROM generate_series(1, :c) n"
            ),
            {"o": owner, "c": count},
        )
        db.session.commit()
    try:
        yield owner
    finally:
        with app.app_context():
            db.session.execute(text("DELETE FROM user_account WHERE id = :o"), {"o": owner})
            db.session.commit()


def test_a_get_request_cannot_write(real_pg_app: Flask) -> None:
    with (
        real_pg_app.test_request_context("/items", method="GET"),
        pytest.raises(DBAPIError, match="read-only transaction"),
    ):
        _insert_user("get-writer@example.com")


def test_a_get_request_reads_without_a_transaction(real_pg_app: Flask) -> None:
    with real_pg_app.test_request_context("/items", method="GET"):
        state = db.session.execute(text("SELECT 1")).scalar()
        in_tx = db.session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    assert state == 1
    assert in_tx.name == "IDLE"  # autocommit: no BEGIN, no ROLLBACK round trips


def test_page_reads_never_start_parallel_workers(real_pg_app: Flask) -> None:
    """A generic plan for a searched page once launched two workers per view."""
    with real_pg_app.test_request_context("/items", method="GET"):
        reads = db.session.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
    with real_pg_app.test_request_context("/items", method="POST"):
        writes = db.session.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
    assert reads == "0"
    assert writes != "0"  # jobs, exports and imports keep the server's setting


def _transaction_status() -> str:
    status = db.session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    return str(status.name)


def _users_named(email: str) -> int:
    return int(
        db.session.execute(
            text("SELECT count(*) FROM user_account WHERE email = :e"), {"e": email}
        ).scalar_one()
    )


def test_a_post_request_writes_in_a_transaction(real_pg_app: Flask) -> None:
    with real_pg_app.test_request_context("/items", method="POST"):
        _insert_user("post-writer@example.com")
        assert _transaction_status() == "INTRANS"  # not autocommit: the write can roll back
        db.session.rollback()  # leave the shared test database as it was
        assert _users_named("post-writer@example.com") == 0
    with real_pg_app.app_context():  # CLI commands and jobs write too
        _insert_user("cli-writer@example.com")
        assert _transaction_status() == "INTRANS"
        db.session.rollback()
        assert _users_named("cli-writer@example.com") == 0


def test_a_connection_killed_while_idle_is_replaced_before_use(
    real_pg_app: Flask, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with real_pg_app.test_request_context("/", method="GET"):
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    killer.dispose()
    monkeypatch.setattr(sql, "IDLE_PING_SECONDS", 0.0)  # it has sat idle long enough
    with real_pg_app.test_request_context("/", method="GET"):
        new_pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    assert new_pid != pid


def test_a_get_request_can_walk_a_large_result_in_batches(real_pg_app: Flask) -> None:
    """CSV exports read in keyset batches: PostgreSQL cursors cannot live in autocommit."""
    with (
        committed_items(real_pg_app, "exporter@example.com", "'export ' || n", 25),
        real_pg_app.test_request_context("/items/export.csv", method="GET"),
    ):
        query = ListQuery(sort="price", direction="asc", q="export")
        rows = list(export_rows(db.session, query, batch=7))
    assert [int(r.price) for r in rows] == list(range(1, 26))


def test_the_suite_itself_refuses_a_get_that_writes(any_app: Flask) -> None:
    """Tests share one writable connection, so conftest guards safe requests instead."""

    @any_app.get("/_test-get-writer")
    @policy("public")
    def writer() -> str:
        _insert_user("sneaky@example.com")
        return "wrote"

    assert any_app.test_client().get("/_test-get-writer").status_code == 500
    with any_app.app_context():
        written = db.session.execute(
            text("SELECT count(*) FROM user_account WHERE email = 'sneaky@example.com'")
        ).scalar()
    assert written == 0


def test_readiness_covers_both_pools(real_pg_app: Flask, sqlite_app: Flask) -> None:
    with real_pg_app.app_context():
        assert len(db.engines) == 2
        assert (
            real_pg_app.test_client().get("/readyz").get_json()["checks"]["database"]["state"]
            == "up"
        )
    with sqlite_app.app_context():
        assert len(db.engines) == 1


def test_an_export_reads_one_snapshot_while_rows_change(real_pg_app: Flask) -> None:
    """Batches after a concurrent change still show the data as it was when the export began."""
    query = ListQuery(sort="name", direction="asc", q="snap ")
    names_sql = "'snap ' || lpad(n::text, 2, '0')"
    with (
        committed_items(real_pg_app, "snapshot@example.com", names_sql, 10) as owner,
        real_pg_app.test_request_context("/items/export.csv"),
        db.snapshot() as session,
    ):
        rows = export_rows(session, query, batch=3)
        first = [next(rows).name for _ in range(3)]
        with real_pg_app.test_request_context(method="POST"):  # another request writes
            db.session.execute(text("UPDATE item SET name = 'snap 00' WHERE name = 'snap 09'"))
            db.session.execute(
                text(
                    "INSERT INTO item (owner_id, name, description, status, price)"
                    " VALUES (:o, 'snap 05b', '', 'draft', 1)"
                ),
                {"o": owner},
            )
            db.session.commit()
        names = first + [row.name for row in rows]
    assert names == [f"snap {n:02d}" for n in range(1, 11)]


def test_a_slow_page_read_is_cancelled_with_a_clear_503(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile URL cannot hold a database backend: the read pool has a statement timeout."""
    monkeypatch.setattr(sql, "READ_STATEMENT_TIMEOUT_MS", 200)
    app = _build_app(make_settings(tmp_path, database_url=pg_url))

    @app.get("/_test-slow")
    @policy("public")
    def slow() -> str:
        db.session.execute(text("SELECT pg_sleep(2)"))
        return "done"

    try:
        response = app.test_client().get("/_test-slow")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "That took too long" in response.get_data(as_text=True)
    finally:
        db.dispose(app)


def test_postgresql_times_come_back_as_aware_utc(pg_url: str) -> None:
    """Both pools' sessions run in UTC, even under a URL that names another zone (its other
    options are kept), so stored times come back as aware UTC datetimes."""
    from datetime import UTC

    from app.models.base import UTCDateTime

    url = f"{pg_url}?options=-c%20timezone%3DAsia/Tokyo%20-c%20application_name%3Dprobe"
    query = text("SELECT timestamptz '2026-12-03 12:00-05' AS at").columns(at=UTCDateTime)
    for read_only in (False, True):
        engine = sql.build_engine(url, read_only=read_only)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "UTC"
            assert conn.exec_driver_sql("SHOW application_name").scalar() == "probe"
            at = conn.execute(query).scalar_one()
        engine.dispose()
        assert at.tzinfo is UTC and (at.day, at.hour) == (3, 17)


def test_a_time_in_another_zone_is_converted_to_utc() -> None:
    """What a session in another zone (PgBouncer drops startup options) or SQLite gives."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from app.models.base import as_utc

    tokyo = datetime(2026, 12, 4, 2, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert as_utc(tokyo) == tokyo and as_utc(tokyo).tzinfo is UTC  # type: ignore[union-attr]
    assert as_utc("2026-12-03 17:00:00") == datetime(2026, 12, 3, 17, tzinfo=UTC)
    assert as_utc(None) is None


def test_a_table_page_in_a_get_reads_on_a_connection_of_its_own(real_pg_app: Flask) -> None:
    """Outside a transaction a read-only request's table page borrows a pooled connection
    for its query alone: the session never begins, and nothing stays checked out."""
    with (
        committed_items(real_pg_app, "own-read@example.com", "'own ' || n", 3) as owner,
        real_pg_app.test_request_context("/items", method="GET"),
    ):
        repo = ItemRepository(db.session)
        for _ in range(2):  # the second read goes through the driver (app/repositories)
            page = repo.list_rows(repo.table_columns(), ListQuery(q="own", per_page=10), total=3)
            assert sorted(row.name for row in page.items) == ["own 1", "own 2", "own 3"]
            assert {row.owner_id for row in page.items} == {owner}
        assert not db.session.in_transaction()
        assert db.engines[-1].pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_table_page_in_a_transaction_sees_its_writes(real_pg_app: Flask) -> None:
    with real_pg_app.test_request_context("/items", method="POST"):
        _insert_user("tx-reader@example.com")
        owner = db.session.execute(
            text("SELECT id FROM user_account WHERE email = 'tx-reader@example.com'")
        ).scalar_one()
        db.session.execute(
            text(
                "INSERT INTO item (owner_id, name, description, status, price)"
                " VALUES (:o, 'unsaved lamp', '', 'draft', 1)"
            ),
            {"o": owner},
        )
        page = table_page(db.session, ListQuery(q="unsaved lamp"), None)
        assert [row.name for row in page.items] == ["unsaved lamp"]
        db.session.rollback()  # leave the shared test database as it was


def test_a_session_that_began_gives_its_connection_back_at_teardown(real_pg_app: Flask) -> None:
    with real_pg_app.test_request_context("/items", method="GET"):
        assert db.session.execute(text("SELECT 1")).scalar() == 1
        reads = db.engines[-1]
        assert reads.pool.checkedout() == 1  # type: ignore[attr-defined]
    assert reads.pool.checkedout() == 0  # type: ignore[attr-defined]
    with real_pg_app.test_request_context("/items", method="GET"):
        db.session  # noqa: B018 - made, never used: nothing to give back
    assert reads.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_read_connection_comes_back_from_a_snapshot_as_it_went(pg_url: str) -> None:
    """Read connections go back to the pool without a rollback: a snapshot's session must
    end its transaction, and its isolation level must not stay on the connection."""
    engine = sql.build_engine(pg_url, read_only=True, pool_size=1, max_overflow=0)
    try:
        with Session(engine) as snapshot:
            snapshot.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            assert snapshot.execute(text("SHOW transaction_isolation")).scalar() == (
                "repeatable read"
            )
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw.info.transaction_status.name == "IDLE"  # type: ignore[union-attr]
            isolation = connection.execute(text("SHOW transaction_isolation")).scalar()
            assert isolation == "read committed"
    finally:
        engine.dispose()
