"""Browser fixtures: a live server with one account per role (embedded, or on the full stack)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Page
from sqlalchemy import text

from app import create_app
from app.core.cache.flask import get_cache
from app.extensions import db
from app.models import Base
from tests.conftest import LiveServer, make_settings
from tests.factories import PASSWORD, make_role_accounts
from tests.faults.databases import own_database


@pytest.fixture
def live_accounts(live_server: LiveServer) -> LiveServer:
    with live_server.app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=" Person")
    return live_server


@pytest.fixture(scope="module")
def stack_database_url() -> Iterator[str | None]:
    """A committed PostgreSQL database of this module's own when DATABASE_URL is set
    (the live server's threads cannot share the rolled-back test transaction); else None."""
    if not os.environ.get("DATABASE_URL"):
        yield None
        return
    with own_database("browser") as url:
        yield url


def _empty_every_table(app: Flask) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with app.app_context(), db.transaction() as session:
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def stack_server(
    request: pytest.FixtureRequest, stack_database_url: str | None, tmp_path: Path
) -> Iterator[LiveServer]:
    """A live server on the full stack where it is configured, as in production: PostgreSQL
    (DATABASE_URL) and Redis (REDIS_URL: sessions, cache, tokens, limits). Each missing one
    falls back to the embedded default (SQLite, in-process stores), so the tests still run
    on a laptop; CI sets both (REQUIRE_SERVICES=1). One account per role."""
    database_url = stack_database_url or request.getfixturevalue("sqlite_url")
    redis_url = os.environ.get("REDIS_URL") or None
    prefix = f"test-stack-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        jobs_mode="thread",
    )
    app = create_app(settings)
    if stack_database_url:
        _empty_every_table(app)  # the module shares one database: each test starts empty
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=" Person")
    server = LiveServer(app).start()
    yield server
    server.stop()
    get_cache(app).close()
    db.dispose(app)
    if redis_url:
        store = redis.Redis.from_url(redis_url)
        keys = list(store.scan_iter(f"{prefix}:*"))
        if keys:
            store.delete(*keys)
        store.close()


def sign_in(
    page: Page, server: LiveServer, email: str, password: str = PASSWORD, path: str = "/login"
) -> None:
    page.goto(server.url + path)
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("#login-form button[type=submit]")


def serious_axe_violations(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it stands: rule and first
    targets, one line each (an empty list is a pass)."""
    result = Axe().run(page)
    return [
        f"{v['id']} {[n['target'] for n in v['nodes']][:3]}"
        for v in result.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
