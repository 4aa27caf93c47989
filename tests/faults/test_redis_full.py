"""A full Redis (maxmemory reached, noeviction) refuses writes: sessions and tokens cannot
be stored, so a sign-in answers 503 with Retry-After, never a bare 500.

Runs a redis-server of its own on a spare port: the shared one is never filled.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

from app import create_app
from app.extensions import db
from tests.conftest import REQUIRE_SERVICES, free_port, make_settings
from tests.factories import PASSWORD, make_role_accounts

pytestmark = pytest.mark.redis


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[str]:
    """A private Redis holding ~4 MB with maxmemory then lowered to 1 MB: every write is OOM."""
    binary = shutil.which("redis-server")
    if binary is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is missing but REQUIRE_SERVICES=1")
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.set("ballast", b"x" * 4_000_000)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1mb")
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("probe", "1")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def full_app(full_redis: str, sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, database_url=sqlite_url, redis_url=full_redis))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    yield app
    db.dispose(app)


def test_a_sign_in_while_redis_is_full_answers_503_with_retry_after(full_app: Flask) -> None:
    client = full_app.test_client()
    page = client.post("/login", data={"email": "user@example.com", "password": PASSWORD})
    assert page.status_code == 503, page.data[:300]
    assert int(page.headers["Retry-After"]) >= 1
    assert "Service temporarily unavailable" in page.get_data(as_text=True)
    assert client.get("/profile").status_code == 303  # not signed in: sent to the sign-in page

    api = full_app.test_client().post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    )
    assert api.status_code == 503, api.data[:300]
    assert api.headers["Content-Type"].startswith("application/problem+json")
    assert int(api.headers["Retry-After"]) >= 1
