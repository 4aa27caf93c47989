"""Cached reads in the app: totals and identities are fresh after every write, on every instance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from app import create_app
from app.core.cache import get_cache
from app.extensions import db
from app.repositories.base import unit_of_work
from app.services.users import create_user
from tests.conftest import FAST_ITERATIONS, PASSWORD, login, make_settings, require


def _count_queries(app: Flask) -> list[str]:
    statements: list[str] = []
    engine = db.engine_for(app)
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_item_total_is_cached_and_dropped_by_item_events(app: Flask, as_user: FlaskClient) -> None:
    as_user.get("/items")
    statements = _count_queries(app)
    as_user.get("/items")
    assert not any("count(" in s.lower() for s in statements)  # the total came from the cache
    assert (
        as_user.post("/items", data={"name": "Fresh", "price": "1", "status": "draft"}).status_code
        == 303
    )
    html = as_user.get("/items").get_data(as_text=True)
    assert "1–1 of 1 items" in html and "Fresh" in html


def test_page_view_uses_at_most_three_statements(app: Flask, as_user: FlaskClient) -> None:
    for n in range(30):
        as_user.post("/items", data={"name": f"Item {n}", "price": "1", "status": "draft"})
    as_user.get("/items?page=2")  # warm the caches
    statements = _count_queries(app)
    assert as_user.get("/items?page=2").status_code == 200
    real = [
        s
        for s in statements
        if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
    ]
    assert len(real) <= 3, real


@pytest.fixture
def two_instances(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
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
    with apps[0].app_context(), unit_of_work(db.session) as session:
        create_user(
            session,
            email="user@example.com",
            name="U",
            password=PASSWORD,
            iterations=FAST_ITERATIONS,
        )
    yield apps[0], apps[1]
    for app in apps:
        get_cache(app).close()
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.mark.redis
def test_a_write_on_one_instance_is_seen_by_the_other(two_instances: tuple[Flask, Flask]) -> None:
    a, b = (app.test_client() for app in two_instances)
    login(a, "user@example.com")
    login(b, "user@example.com")
    assert "No items yet" in b.get("/items").get_data(as_text=True)  # b caches a total of 0
    assert (
        a.post("/items", data={"name": "Made on A", "price": "2", "status": "active"}).status_code
        == 303
    )
    html = b.get("/items").get_data(as_text=True)
    assert "Made on A" in html and "1–1 of 1 items" in html


@pytest.mark.redis
def test_renaming_on_one_instance_refreshes_the_identity_on_the_other(
    two_instances: tuple[Flask, Flask],
) -> None:
    a, b = (app.test_client() for app in two_instances)
    login(a, "user@example.com")
    login(b, "user@example.com")
    assert (
        "U <span" in b.get("/items").get_data(as_text=True) or b.get("/profile").status_code == 200
    )
    a.post("/profile", data={"name": "Renamed on A", "email": "user@example.com"})
    assert "Renamed on A" in b.get("/items").get_data(
        as_text=True
    )  # the nav reads the cached identity
