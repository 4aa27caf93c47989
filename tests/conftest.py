"""Shared fixtures: settings, apps on SQLite and PostgreSQL, real services, the browser.

PostgreSQL tests run in a database created for this run (schema built by
`alembic upgrade head`) with one rolled-back transaction per test. Redis keys
and queue names carry a per-run prefix so parallel runs never collide.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask, Response, g, has_app_context, request
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, event, text
from werkzeug.serving import make_server

from app import create_app
from app.core import migrations, netguard
from app.core.events import EventBus
from app.core.sql import SAFE_METHODS
from app.extensions import db
from app.jobs.runner import get_runner
from app.settings import Settings, normalize_database_url
from tests.factories import FAST_ITERATIONS, PASSWORD, make_role_accounts, make_user

RUN_ID = uuid.uuid4().hex[:8]
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = "/usr/bin/chromium"


def require(name: str) -> str:
    """The URL of a real service, or skip (fail under REQUIRE_SERVICES=1) when absent."""
    url = os.environ.get(name, "").strip()
    if not url:
        message = f"{name} is not set"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} but REQUIRE_SERVICES=1")
        pytest.skip(message)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _fresh_event_bus() -> Iterator[None]:
    """Every test starts with an empty EventBus; create_app subscribes what it needs."""
    EventBus.reset_instance()
    yield
    EventBus.reset_instance()


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"tests resolve no names ({host})")


@pytest.fixture(autouse=True)
def _no_name_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outgoing requests the app checks (webhooks) never ask a real DNS server in tests:
    every name is unresolvable unless a test stages its own answers."""
    monkeypatch.setattr(netguard, "resolve_name", _no_dns)


# --- databases -----------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; tests copy it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A private, migrated SQLite database for one test."""
    path = tmp_path / "app.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database created for this run, migrated to head, dropped at the end."""
    base = normalize_database_url(require("DATABASE_URL"))
    name = f"test_app_{RUN_ID}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(base)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    migrations.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _refuse_writes_in_safe_requests(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """A GET that writes fails in production (read-only pool); make it fail in tests too,
    where every session shares one writable test connection."""
    if has_app_context() and g.get("_safe_request"):
        verb = statement.lstrip()[:6].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            raise AssertionError(f"a {request.method} request wrote: {statement[:100]}")


def guard_safe_requests(engine: Engine) -> None:
    event.listen(engine, "before_cursor_execute", _refuse_writes_in_safe_requests)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    guard_safe_requests(engine)
    yield engine
    engine.dispose()


# --- apps ----------------------------------------------------------------------


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test app: fast hashing, files under tmp_path, no real services."""
    base: dict[str, Any] = {
        "env": "testing",
        "secret_key": "test-secret-key-" + "x" * 32,
        "instance_path": tmp_path / "instance",
        "password_hash_iterations": FAST_ITERATIONS,
        "public_url": "http://localhost",
        "log_json": False,
        "redis_key_prefix": f"test-{RUN_ID}",
        "queue_prefix": f"test-{RUN_ID}",
        "table_cache_ttl": 60,  # one process per app here, so cached tables are safe to test
        "jobs_mode": "manual",  # tests run outbox messages with drain()
    }
    base.update(overrides)
    return Settings(**base)


def _build_app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.config.update(WTF_CSRF_ENABLED=False)  # CSRF has its own tests with it switched on
    guard_safe_requests(db.engine_for(app))

    @app.before_request
    def _note_safe_method() -> None:
        g._safe_request = request.method in SAFE_METHODS

    @app.after_request
    def _run_what_the_request_queued(response: Response) -> Response:
        get_runner(app).drain()  # the emails a request owed are there when it returns
        return response

    return app


@pytest.fixture
def sqlite_app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on its own SQLite file."""
    app = _build_app(make_settings(tmp_path, database_url=sqlite_url))
    yield app
    db.dispose(app)


@pytest.fixture
def pg_app(pg_engine: Engine, pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on the run's PostgreSQL database, inside a transaction rolled back afterwards."""
    yield from _rolled_back(pg_engine, _build_app(make_settings(tmp_path, database_url=pg_url)))


def _rolled_back(engine: Engine, app: Flask) -> Iterator[Flask]:
    connection = engine.connect()
    outer = connection.begin()
    db.bind_to(app, connection)
    yield app
    outer.rollback()
    connection.close()
    db.dispose(app)


@pytest.fixture
def unlimited_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """Like `app` (PostgreSQL rolled back, or SQLite) but without rate limits, for tests that
    send thousands of requests from one address."""
    if not os.environ.get("DATABASE_URL"):
        url = request.getfixturevalue("sqlite_url")
        app = _build_app(make_settings(tmp_path, database_url=url, rate_limits_enabled=False))
        yield app
        db.dispose(app)
        return
    url = request.getfixturevalue("pg_url")
    settings = make_settings(tmp_path, database_url=url, rate_limits_enabled=False)
    yield from _rolled_back(request.getfixturevalue("pg_engine"), _build_app(settings))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest) -> Flask:
    """The same test on both databases."""
    fixture = "sqlite_app" if request.param == "sqlite" else "pg_app"
    app: Flask = request.getfixturevalue(fixture)
    return app


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Flask:
    """PostgreSQL when DATABASE_URL is set (CI), otherwise SQLite."""
    fixture = "pg_app" if os.environ.get("DATABASE_URL") else "sqlite_app"
    the_app: Flask = request.getfixturevalue(fixture)
    return the_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


# --- a live server for the browser -----------------------------------------------


class LiveServer:
    """The app served by werkzeug in a background thread."""

    def __init__(self, app: Flask, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A running app on a private SQLite file (threads cannot share a test transaction)."""
    settings = make_settings(tmp_path, database_url=sqlite_url, jobs_mode="thread")
    app = create_app(settings)
    server = LiveServer(app).start()
    yield server
    server.stop()
    db.dispose(app)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Drive Debian's Chromium: Playwright cannot download its own browser here."""
    if not Path(CHROMIUM).exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"{CHROMIUM} is missing but REQUIRE_SERVICES=1 (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API keeps an event loop in the main thread."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


# --- accounts ------------------------------------------------------------------


@pytest.fixture
def accounts(app: Flask) -> dict[str, int]:
    """One account per role (password PASSWORD); returns their ids by role."""
    with app.app_context(), db.transaction() as session:
        return make_role_accounts(session)


def login(client: FlaskClient, email: str, password: str = PASSWORD, **extra: str) -> Any:
    """Sign in through the real form; returns the response."""
    return client.post("/login", data={"email": email, "password": password, **extra})


@pytest.fixture
def as_admin(client: FlaskClient, accounts: dict[str, int]) -> FlaskClient:
    assert login(client, "admin@example.com").status_code == 303
    return client


@pytest.fixture
def as_user(client: FlaskClient, accounts: dict[str, int]) -> FlaskClient:
    assert login(client, "user@example.com").status_code == 303
    return client


@pytest.fixture
def as_guest(client: FlaskClient, accounts: dict[str, int]) -> FlaskClient:
    assert login(client, "guest@example.com").status_code == 303
    return client


@pytest.fixture
def redis_apps(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """Two instances on one database and one Redis (like two hosts), with user@example.com."""
    import redis

    from app.core.cache.flask import get_cache

    url = require("REDIS_URL")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    apps = []
    for name in ("a", "b"):
        app = create_app(
            make_settings(
                tmp_path / name, database_url=sqlite_url, redis_url=url, redis_key_prefix=prefix
            )
        )
        app.config["WTF_CSRF_ENABLED"] = False
        apps.append(app)
    with apps[0].app_context(), db.transaction() as session:
        make_user(session, "user@example.com", name="U")
    yield apps[0], apps[1]
    for app in apps:
        get_cache(app).close()
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def role_tokens(client: FlaskClient) -> dict[str, dict[str, str]]:
    """Authorization headers by role, from the API's own sign-in (the three role accounts)."""
    out = {}
    for role in ("admin", "user", "guest"):
        response = client.post(
            "/api/v1/auth/login", json={"email": f"{role}@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.json
        out[role] = {"Authorization": f"Bearer {response.json['access_token']}"}
    return out
