"""Outages of Redis and PostgreSQL under concurrent requests, through a proxy the tests cut.

The app talks to the shared services through a FaultProxy (tests/faults/proxy.py);
cutting or pausing the proxy is the outage, so no shared service is ever stopped.
What is asserted is what a visitor and an operator see: status codes, Retry-After,
security headers, the access-log line, how fast the answer came, and recovery.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app import create_app
from app.extensions import db
from tests.conftest import login, make_settings, require
from tests.factories import PASSWORD, make_role_accounts
from tests.faults.databases import own_database
from tests.faults.proxy import FaultProxy

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

HANG_BUDGET_SECONDS = 1.0  # a hung service must still be answered within this


@pytest.fixture(scope="module")
def fault_db() -> Iterator[str]:
    """A database of its own: these apps commit, and other tests expect empty tables."""
    with own_database("faults") as url:
        yield url


@pytest.fixture
def proxies(fault_db: str) -> Iterator[dict[str, FaultProxy]]:
    redis_url = require("REDIS_URL")
    with FaultProxy.for_url(redis_url) as r, FaultProxy.for_url(fault_db) as d:
        yield {"redis": r, "database": d}


@pytest.fixture
def outage_app(fault_db: str, proxies: dict[str, FaultProxy], tmp_path: Path) -> Iterator[Flask]:
    """The app on PostgreSQL and Redis through the proxies, with the three role accounts."""
    prefix = f"test-fault-{uuid.uuid4().hex[:8]}"
    app = create_app(
        make_settings(
            tmp_path,
            database_url=proxies["database"].url(fault_db),
            redis_url=proxies["redis"].url(require("REDIS_URL")),
            redis_key_prefix=prefix,
            table_cache_ttl=0,
        )
    )
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=f" {prefix}")
    yield app
    db.dispose(app)  # connections from before an outage are gone
    with app.app_context(), db.transaction() as session:
        session.execute(text("DELETE FROM user_account"))
        session.execute(text("DELETE FROM audit_log"))
    db.dispose(app)
    store = redis.Redis.from_url(require("REDIS_URL"))
    keys = list(store.scan_iter(f"{prefix}:*"))
    if keys:
        store.delete(*keys)


def _token(client: FlaskClient) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.data
    return {"Authorization": f"Bearer {response.json['access_token']}"}  # type: ignore[index]


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, "user@example.com").status_code == 303
    assert client.get("/items").status_code == 200
    return client


def _concurrently(calls: list[Callable[[], Any]]) -> list[tuple[Any, float]]:
    """Run the calls at once; each result with how long it took."""

    def timed(call: Callable[[], Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        result = call()
        return result, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(timed, calls))


def _assert_edge_headers(response: Any) -> None:
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def _assert_unavailable_page(response: Any) -> None:
    assert response.status_code == 503, response.data[:300]
    assert int(response.headers["Retry-After"]) >= 1
    html = response.get_data(as_text=True)
    assert "Service temporarily unavailable" in html and 'class="error-page' in html
    _assert_edge_headers(response)


@pytest.mark.parametrize("fault", ["cut", "pause"])
def test_redis_outage_degrades_public_pages_and_refuses_unchecked_sessions(
    outage_app: Flask,
    proxies: dict[str, FaultProxy],
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = _signed_in(outage_app)
    bearer = _token(outage_app.test_client())
    getattr(proxies["redis"], fault)()
    try:
        with caplog.at_level(logging.INFO, logger="app.access"):
            results = _concurrently(
                [lambda: outage_app.test_client().get("/login") for _ in range(6)]
                + [lambda: member.get("/items") for _ in range(6)]
                + [lambda: outage_app.test_client().get("/api/v1/me", headers=bearer)] * 6
            )
        logins, pages, api = results[:6], results[6:12], results[12:]
        for response, seconds in results:
            assert seconds < HANG_BUDGET_SECONDS, (response.status_code, seconds)
        for response, _ in logins:  # the sign-in form renders, with its CSRF token
            assert response.status_code == 200
            assert 'name="csrf_token"' in response.get_data(as_text=True)
            _assert_edge_headers(response)
        for response, _ in pages:  # a session that cannot be checked is refused
            _assert_unavailable_page(response)
        for response, _ in api:
            assert response.status_code == 503 and response.mimetype == "application/problem+json"
            assert response.headers["Retry-After"]
        lines = [r for r in caplog.records if r.name == "app.access" and r.status == 503]  # type: ignore[attr-defined]
        assert len(lines) == 12, [r.getMessage() for r in caplog.records]
        assert {r.path for r in lines} == {"/items", "/api/v1/me"}  # type: ignore[attr-defined]
        # a sign-in attempt now is answered 503 and does not count against the limits
        attempts = [login(outage_app.test_client(), "user@example.com") for _ in range(12)]
        assert {a.status_code for a in attempts} == {503}
    finally:
        proxies["redis"].restore()
    time.sleep(2.2)  # the breaker's cooldown
    assert member.get("/items").status_code == 200  # the same session, intact
    assert outage_app.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    assert login(outage_app.test_client(), "user@example.com").status_code == 303


def test_a_sign_in_form_loaded_during_the_outage_works_after_it(
    outage_app: Flask, proxies: dict[str, FaultProxy]
) -> None:
    outage_app.config["WTF_CSRF_ENABLED"] = True
    client = outage_app.test_client()
    proxies["redis"].cut()
    try:
        for _ in range(3):  # trip the breaker, then load the form
            page = client.get("/login")
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        assert token
    finally:
        proxies["redis"].restore()
    time.sleep(2.2)
    response = client.post(
        "/login",
        data={"email": "user@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert client.get("/items").status_code == 200


def test_database_outage_answers_503_fast_and_recovers(
    outage_app: Flask, proxies: dict[str, FaultProxy]
) -> None:
    member = _signed_in(outage_app)
    bearer = _token(outage_app.test_client())
    proxies["database"].cut()
    try:
        results = _concurrently(
            [lambda: member.get("/items?q=lamp") for _ in range(5)]
            + [lambda: outage_app.test_client().get("/api/v1/items", headers=bearer)] * 5
        )
        for response, seconds in results:
            assert response.status_code == 503, response.data[:300]
            assert response.headers["Retry-After"]
            _assert_edge_headers(response)
            assert seconds < 3.0  # the first connect waits its timeout; the breaker spares the rest
        assert outage_app.test_client().get("/healthz").status_code == 200
        ready = outage_app.test_client().get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"]["state"] == "down"  # type: ignore[index]
    finally:
        proxies["database"].restore()
    time.sleep(2.2)
    assert member.get("/items?q=lamp").status_code == 200
    assert outage_app.test_client().get("/api/v1/items", headers=bearer).status_code == 200


def _csrf_in(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:300]
    return found.group(1)


def test_a_signed_in_browser_that_loaded_the_sign_in_form_during_the_outage_can_use_it_after(
    outage_app: Flask, proxies: dict[str, FaultProxy]
) -> None:
    """Its session cookie came along, but Redis could not read the session: the form got a
    stand-in token. After the outage the same browser's real session answers, and the
    form it holds must still work, as must the forms it loaded before the outage."""
    outage_app.config["WTF_CSRF_ENABLED"] = True
    client = outage_app.test_client()
    form = {"email": "user@example.com", "password": PASSWORD}
    token = _csrf_in(client.get("/login"))
    assert client.post("/login", data={**form, "csrf_token": token}).status_code == 303
    before = _csrf_in(client.get("/profile/edit"))  # a form loaded before the outage
    proxies["redis"].cut()
    try:
        for _ in range(3):  # trip the breaker, then load the form
            page = client.get("/login")
        assert page.status_code == 200
        during = _csrf_in(page)
    finally:
        proxies["redis"].restore()
    time.sleep(2.2)
    assert during != before
    edit = {"name": "Renamed", "email": "user@example.com", "csrf_token": before}
    assert client.post("/profile", data=edit).status_code in (200, 303)
    forged = during[:-4] + ("AAAA" if not during.endswith("AAAA") else "BBBB")
    assert client.post("/login", data={**form, "csrf_token": forged}).status_code == 400
    response = client.post("/login", data={**form, "csrf_token": during})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert client.get("/items").status_code == 200
