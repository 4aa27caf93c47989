"""SQLAlchemy plumbing that needs no Flask: engines tuned per backend, and the unit of work.

Pooled connections are pinged only after they have sat idle (IDLE_PING_SECONDS),
not on every checkout: under load that ping would be one more round trip per
request. Services that own their transactions (an import committing batch by
batch) use `transaction(session)`; views and jobs use `db.transaction()`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from app.core.breaker import CircuitBreaker

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDLE_PING_SECONDS = 5.0
READ_STATEMENT_TIMEOUT_MS = 10_000  # no page read may hold a database backend longer
CONNECT_TIMEOUT_SECONDS = 2  # psycopg's smallest; the breaker makes only the first waits count
_AUTOCOMMIT: weakref.WeakSet[Engine] = weakref.WeakSet()  # the read-only engines


@contextmanager
def read_connection(session: Session) -> Iterator[Connection]:
    """A connection for one read: the session's own once it has begun (the read must see
    what its transaction wrote), else, on a read-only engine (autocommit: every statement
    reads on its own anyway), a pooled connection for just this read. Beginning and
    closing the session's transaction cost a table page about as much CPU as its query."""
    bind = session.get_bind()
    if session.in_transaction() or not isinstance(bind, Engine) or bind not in _AUTOCOMMIT:
        yield session.connection()
        return
    with bind.connect() as connection:
        yield connection


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Commit the block's changes together, or roll all of them back if it raises."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def build_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: int = 10,
    echo: bool = False,
    read_only: bool = False,
    statement_timeout_ms: int | None = None,
    breaker: CircuitBreaker | None = None,
) -> Engine:
    """Create an engine with settings that suit the backend (pooling, SQLite pragmas).

    `read_only` (PostgreSQL) gives autocommit connections that refuse writes and
    cancel any statement running longer than `statement_timeout_ms`, so a hostile
    URL (a page a million rows deep, a search matching everything) cannot tie up
    the database. They never start parallel workers: a page reads a few dozen rows,
    and once psycopg prepares a statement PostgreSQL may plan it generically, without
    the search term; such a plan for a searched page launched two worker processes per
    view (40 ms instead of 5, and two process starts of CPU each time).
    """
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}, "echo": echo}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Sessions in UTC: times come back as aware UTC datetimes, as the app keeps them
    # (app/models/base.py then passes them through unconverted). Options the URL gives
    # (`?options=...`) are kept: connect_args would replace them.
    given = make_url(url).query.get("options") or ()
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "options": " ".join([*((given,) if isinstance(given, str) else given), "-c timezone=UTC"]),
    }
    extra: dict[str, Any] = {"connect_args": connect_args}
    if read_only:
        extra["isolation_level"] = "AUTOCOMMIT"
        # No rollback when a connection goes back to the pool: in autocommit there is no
        # transaction to end (a snapshot's is ended by its session, and its isolation
        # level restored by SQLAlchemy either way), and the call cost every read.
        extra["pool_reset_on_return"] = None
        connect_args["options"] += (
            " -c default_transaction_read_only=on"
            f" -c statement_timeout={int(statement_timeout_ms or READ_STATEMENT_TIMEOUT_MS)}"
            " -c max_parallel_workers_per_gather=0"
        )
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        echo=echo,
        **extra,
    )
    if read_only:
        _AUTOCOMMIT.add(engine)
    event.listen(engine, "connect", _note_checkin)  # a fresh connection needs no ping
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    if breaker is not None:
        event.listen(engine, "do_connect", _connect_through(breaker, engine))
    return engine


def _connect_through(breaker: CircuitBreaker, engine: Engine) -> Any:
    """A do_connect hook: new connections go through the breaker, so while the database
    is down requests fail at once instead of each waiting out the connect timeout."""

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        with breaker.guard((engine.dialect.loaded_dbapi.Error,)):
            return dialect.connect(*cargs, **cparams)

    return do_connect


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    """A checkout hook that pings connections idle for a while (a server restart, a
    dropped socket) and makes the pool replace a dead one before anyone uses it."""

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("checked_in_at", 0.0)
        if idle < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error

    return on_checkout


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Enforce foreign keys and let readers run beside a writer (WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def watch_disconnects(breaker: CircuitBreaker, *engines: Engine) -> None:
    """When a query finds the server gone (a restart, a cut), count it against the breaker
    and drop every pooled connection of these engines: they all pointed at the old server,
    and each would fail one request before being replaced."""

    def handle_error(context: Any) -> None:
        if context.is_disconnect:
            breaker.failed()
            for engine in engines:
                engine.dispose(close=False)

    for engine in engines:
        event.listen(engine, "handle_error", handle_error)
