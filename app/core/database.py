"""Database extension: pooled engines per app, one session per request or job.

The session is created lazily on first use inside an app context and closed at
teardown. Repositories never commit; the view, CLI command or job that owns the
work wraps it in `db.transaction()` (SQLAlchemy's "separate and external" rule).

Requests with a safe method (GET, HEAD, OPTIONS) read through a second pool on
PostgreSQL (see app/core/sql.py): autocommit, so a page costs one round trip per
query instead of BEGIN + query + ROLLBACK, and read-only, so a GET that tries to
write fails loudly instead of changing data.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.core.breaker import CircuitBreaker
from app.core.sql import SAFE_METHODS, build_engine, transaction, watch_disconnects

_G_KEY = "_db_session"
_BACKGROUND_KEY = "_db_background"


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    """A forked child (an RQ work-horse) must not use the parent's pooled connections."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


@dataclass
class _State:
    engine: Engine
    factory: sessionmaker[Session]
    read_engine: Engine
    read_factory: sessionmaker[Session]


class Database:
    """Flask extension owning each app's engine and the per-context session.

    State lives in `app.extensions["database"]`, so several apps (tests, two
    instances) can share this one object.
    """

    def init_app(self, app: Flask, *, url: str, **engine_options: Any) -> None:
        """Create the app's engines and session factories; close sessions at teardown."""
        breaker = CircuitBreaker("database")  # one per app: both pools reach the same server
        engine = build_engine(url, breaker=breaker, **engine_options)
        read_engine = engine
        if engine.dialect.name == "postgresql":
            read_engine = build_engine(url, read_only=True, breaker=breaker, **engine_options)
            watch_disconnects(breaker, engine, read_engine)
        _ENGINES.update((engine, read_engine))
        app.extensions["database"] = _State(
            engine,
            sessionmaker(bind=engine, expire_on_commit=False),
            read_engine,
            sessionmaker(bind=read_engine, expire_on_commit=False),
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

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every pool of the current app: the write engine, then the read-only one if separate."""
        state = self._state()
        if state.read_engine is state.engine:
            return (state.engine,)
        return (state.engine, state.read_engine)

    def engine_for(self, app: Flask) -> Engine:
        """The engine of a given app (CLI and tests, outside a context)."""
        return self._state(app).engine

    @property
    def session(self) -> Session:
        """The session of the current app context, created on first use.

        Inside a GET/HEAD/OPTIONS request it reads through the read-only pool.
        """
        session: Session | None = g.get(_G_KEY)
        if session is None:
            state = self._state()
            safe = (
                has_request_context()
                and request.method in SAFE_METHODS
                and not g.get(_BACKGROUND_KEY)
            )
            session = (state.read_factory if safe else state.factory)()
            setattr(g, _G_KEY, session)
        return session

    @contextmanager
    def background(self, app: Flask) -> Iterator[None]:
        """An app context of its own for background work (a task run right after a request,
        even from inside it): its session writes, whatever the request's method was."""
        with app.app_context():
            setattr(g, _BACKGROUND_KEY, True)
            yield

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The current session, committed when the block ends or rolled back if it raises."""
        with transaction(self.session) as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A session of its own that reads one consistent snapshot until it closes.

        For long reads made of many queries, such as a CSV export walked in keyset
        batches: every batch sees the data as it was when the first one ran
        (REPEATABLE READ, read-only on PostgreSQL), so no row is missed or repeated
        when rows change meanwhile. SQLite serialises writers, so a plain session
        does there; so does a test session bound to an outer transaction.
        """
        state = self._state()
        session = state.read_factory()
        try:
            bound_to_engine = isinstance(session.get_bind(), Engine)
            if bound_to_engine and state.read_engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session
        finally:
            session.close()

    def bind_to(self, app: Flask, connection: Connection) -> None:
        """Bind the app's sessions to an outer connection (tests: one transaction per test)."""
        state = self._state(app)
        state.factory = state.read_factory = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    def dispose(self, app: Flask) -> None:
        """Close the app's pooled connections (tests and worker shutdown)."""
        state = self._state(app)
        state.engine.dispose()
        if state.read_engine is not state.engine:
            state.read_engine.dispose()

    @staticmethod
    def _teardown(_exc: BaseException | None) -> None:
        """Close the context's session: end its transaction and give back its connection.
        One that never began (a page whose reads all came from the cache or borrowed a
        connection of their own) holds nothing to give back, and is dropped as it is."""
        session: Session | None = g.pop(_G_KEY, None)
        if session is not None and (session.in_transaction() or session.identity_map):
            session.close()
