"""Database extension: one pooled engine per app, one session per request or job.

The session is created lazily on first use inside an app context and closed at
teardown. Repositories never commit; the view, CLI command or job that owns the work
wraps it in `unit_of_work()` from app/repositories/base.py (SQLAlchemy's
"separate and external" rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

_G_KEY = "_db_session"


def build_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: int = 10,
    echo: bool = False,
) -> Engine:
    """Create an engine with settings that suit the backend (pooling, SQLite pragmas)."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}, "echo": echo}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        echo=echo,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Enforce foreign keys and let readers run beside a writer (WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


@dataclass
class _State:
    engine: Engine
    factory: sessionmaker[Session]


class Database:
    """Flask extension owning each app's engine and the per-context session.

    State lives in `app.extensions["database"]`, so several apps (tests, two
    instances) can share this one object.
    """

    def init_app(self, app: Flask, *, url: str, **engine_options: Any) -> None:
        """Create the app's engine and session factory; close sessions at teardown."""
        engine = build_engine(url, **engine_options)
        app.extensions["database"] = _State(
            engine, sessionmaker(bind=engine, expire_on_commit=False)
        )
        app.teardown_appcontext(self._teardown)

    @staticmethod
    def _state(app: Flask | None = None) -> _State:
        state: _State = (app or current_app).extensions["database"]
        return state

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return self._state().engine

    def engine_for(self, app: Flask) -> Engine:
        """The engine of a given app (CLI and tests, outside a context)."""
        return self._state(app).engine

    @property
    def session(self) -> Session:
        """The session of the current app context, created on first use."""
        session: Session | None = g.get(_G_KEY)
        if session is None:
            session = self._state().factory()
            setattr(g, _G_KEY, session)
        return session

    def new_session(self, app: Flask | None = None) -> Session:
        """A session outside the request scope (threads, jobs); the caller closes it."""
        return self._state(app).factory()

    def bind_to(self, app: Flask, connection: Connection) -> None:
        """Bind the app's sessions to an outer connection (tests: one transaction per test)."""
        self._state(app).factory = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    def dispose(self, app: Flask) -> None:
        """Close the app's pooled connections (tests and worker shutdown)."""
        self._state(app).engine.dispose()

    @staticmethod
    def _teardown(_exc: BaseException | None) -> None:
        session: Session | None = g.pop(_G_KEY, None)
        if session is not None:
            session.close()
