"""Cached reads in the app: totals and identities are fresh after every write, on every instance."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from app.extensions import db
from tests.conftest import login


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


@pytest.mark.redis
def test_a_write_on_one_instance_is_seen_by_the_other(redis_apps: tuple[Flask, Flask]) -> None:
    a, b = (app.test_client() for app in redis_apps)
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
    redis_apps: tuple[Flask, Flask],
) -> None:
    a, b = (app.test_client() for app in redis_apps)
    login(a, "user@example.com")
    login(b, "user@example.com")
    assert (
        "U <span" in b.get("/items").get_data(as_text=True) or b.get("/profile").status_code == 200
    )
    a.post("/profile", data={"name": "Renamed on A", "email": "user@example.com"})
    assert "Renamed on A" in b.get("/items").get_data(
        as_text=True
    )  # the nav reads the cached identity
