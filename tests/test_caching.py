"""Cached reads in the app: totals and identities are fresh after every write, on every instance."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from app.extensions import db
from tests.conftest import _build_app, login, make_settings
from tests.factories import make_role_accounts, seed_items


def _eventually(fetch: Callable[[], str], wanted: str, timeout: float = 2.0) -> str:
    """What `fetch` returns once it shows `wanted` (or at the timeout): another instance
    hears of a write through Redis pub/sub, within milliseconds rather than at once."""
    deadline = time.monotonic() + timeout
    text = fetch()
    while wanted not in text and time.monotonic() < deadline:
        time.sleep(0.01)
        text = fetch()
    return text


def _count_queries(app: Flask) -> list[str]:
    """The statements the app runs from now on, but for the outbox poll the test app makes
    after every request (tests/conftest.py drains what a request queued; on SQLite that
    poll shows on this engine)."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        if not args[2].lstrip().startswith("SELECT outbox."):
            statements.append(args[2])

    event.listen(db.engine_for(app), "before_cursor_execute", record)
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
    assert "1 item" in html and "Fresh" in html


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
    html = _eventually(lambda: b.get("/items").get_data(as_text=True), "Made on A")
    assert "Made on A" in html and "1 item" in html


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
    html = _eventually(lambda: b.get("/items").get_data(as_text=True), "Renamed on A")
    assert "Renamed on A" in html  # the nav reads the cached identity


# --- the rendered table region (app/web/regions.py) -------------------------------------


def _client_as(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, email).status_code == 303
    return client


def test_a_repeated_table_view_runs_no_query_and_shows_a_write_at_once(
    app: Flask, accounts: dict[str, int]
) -> None:
    (item_id,) = seed_items(app, accounts["user"], [("Before", "5", "active")])
    user = _client_as(app, "user@example.com")
    assert "Before" in user.get("/items?sort=name").get_data(as_text=True)
    statements = _count_queries(app)
    again = user.get("/items?sort=name")
    assert again.status_code == 200 and "Before" in again.get_data(as_text=True)
    assert statements == []  # the region came from the cache, the user from the identity cache
    saved = user.post(f"/items/{item_id}", data={"name": "After", "price": "5", "status": "active"})
    assert saved.status_code == 303
    html = user.get("/items?sort=name").get_data(as_text=True)
    assert "After" in html and "Before" not in html


def test_renaming_an_owner_refreshes_the_owner_column(app: Flask, accounts: dict[str, int]) -> None:
    seed_items(app, accounts["user"], [("Owned", "5", "active")])
    admin = _client_as(app, "admin@example.com")
    assert '<td data-label="Owner">User</td>' in admin.get("/items").get_data(as_text=True)
    user = _client_as(app, "user@example.com")
    renamed = user.post("/profile", data={"name": "Renamed Owner", "email": "user@example.com"})
    assert renamed.status_code == 200
    html = admin.get("/items").get_data(as_text=True)
    assert '<td data-label="Owner">Renamed Owner</td>' in html


def test_each_kind_of_viewer_gets_its_own_row_actions(app: Flask, accounts: dict[str, int]) -> None:
    mine = seed_items(app, accounts["user"], [("Users item", "1", "active")])
    theirs = seed_items(app, accounts["admin"], [("Admins item", "2", "active")])
    # Sign everyone in first: a sign-in is a user event, which would drop the cached regions.
    admin, user, guest = (_client_as(app, f"{r}@example.com") for r in ("admin", "user", "guest"))
    admin_html = admin.get("/items").get_data(as_text=True)
    assert f"/items/{mine[0]}/edit" in admin_html and f"/items/{theirs[0]}/edit" in admin_html
    user_html = user.get("/items").get_data(as_text=True)
    assert f"/items/{mine[0]}/edit" in user_html
    assert f"/items/{theirs[0]}/edit" not in user_html  # not the admin's cached region
    guest_html = guest.get("/items").get_data(as_text=True)
    assert "/edit" not in guest_html and "data-bulk-bar" not in guest_html


def test_each_session_keeps_its_own_csrf_token_in_the_bulk_form(
    app: Flask, accounts: dict[str, int]
) -> None:
    seed_items(app, accounts["admin"], [("Shared", "1", "active")])
    sessions = [_client_as(app, "admin@example.com") for _ in range(2)]  # one viewer, one region
    tokens = []
    for client in sessions:
        html = client.get("/items").get_data(as_text=True)
        bulk = re.search(r'name="csrf_token" value="([^"]+)" form="bulk-form"', html)
        header = re.search(r'"X-CSRFToken": "([^"]+)"', html)
        assert bulk and header and bulk.group(1) == header.group(1)
        tokens.append(bulk.group(1))
    assert tokens[0] != tokens[1]


def test_table_cache_ttl_zero_renders_the_region_every_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = _build_app(make_settings(tmp_path, database_url=sqlite_url, table_cache_ttl=0))
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    user = _client_as(app, "user@example.com")
    user.get("/items")
    statements = _count_queries(app)
    assert user.get("/items").status_code == 200
    assert any("FROM item" in s for s in statements)
    db.dispose(app)


def test_a_sign_in_elsewhere_keeps_the_tables_cached(app: Flask, accounts: dict[str, int]) -> None:
    seed_items(app, accounts["user"], [("Kept", "1", "active")])
    user = _client_as(app, "user@example.com")
    user.get("/items")
    _client_as(app, "admin@example.com")  # a sign-in writes last_login_at: not shown here
    statements = _count_queries(app)
    assert "Kept" in user.get("/items").get_data(as_text=True)
    assert not [s for s in statements if "item" in s.lower()]  # the table came from the cache


def test_deleting_a_user_drops_their_items_from_rows_and_totals(
    app: Flask, accounts: dict[str, int]
) -> None:
    seed_items(app, accounts["user"], [(f"Gone {n}", "1", "active") for n in range(5)])
    seed_items(app, accounts["admin"], [(f"Stays {n}", "1", "active") for n in range(3)])
    admin = _client_as(app, "admin@example.com")
    assert "8 items" in admin.get("/items").get_data(as_text=True)
    assert admin.post(f"/admin/users/{accounts['user']}/delete").status_code in (200, 303)
    html = admin.get("/items").get_data(as_text=True)
    assert "3 items" in html and 'data-count="3"' in html and "Gone" not in html


def test_a_malformed_cursor_shares_the_entry_of_no_cursor(
    app: Flask, accounts: dict[str, int]
) -> None:
    seed_items(app, accounts["user"], [("Only", "1", "active")])
    user = _client_as(app, "user@example.com")
    user.get("/items?page=1")
    statements = _count_queries(app)
    for junk in ("x", "a.bm90IGpzb24.0", "b.W10.999999"):
        assert user.get(f"/items?page=1&cursor={junk}").status_code == 200
    assert statements == []


def test_a_process_keeps_its_regions_within_a_budget_least_recently_viewed_first(
    app: Flask, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.cache.flask import get_cache

    seed_items(app, accounts["user"], [("Some", "1", "active")])
    user = _client_as(app, "user@example.com")
    assert user.get("/items?q=term10").status_code == 200
    local_keys = get_cache(app).local_keys
    monkeypatch.setattr(local_keys, "budget", 5 * local_keys.used)  # about five regions
    for n in range(11, 15):
        assert user.get(f"/items?q=term{n}").status_code == 200
    assert user.get("/items?q=term10").status_code == 200  # viewed again: the newest now
    for n in range(15, 17):
        assert user.get(f"/items?q=term{n}").status_code == 200
    with app.app_context():
        kept = [k for k in get_cache().l1.keys() if k.startswith("region:")]  # noqa: SIM118
    assert sorted(int(k.rsplit("term", 1)[1].split("&")[0]) for k in kept) == [10, 13, 14, 15, 16]
    assert local_keys.used <= local_keys.budget


def test_a_first_render_takes_its_counts_from_the_cache(sqlite_url: str, tmp_path: Path) -> None:
    """With the region cache off, "All N of your items" must not count the owner's rows on
    every view (on a million items that count cost ~0.5 s a page)."""
    app = _build_app(make_settings(tmp_path, database_url=sqlite_url, table_cache_ttl=0))
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    user = _client_as(app, "user@example.com")
    for name in ("One", "Two"):
        user.post("/items", data={"name": name, "price": "1", "status": "draft"})
    assert "All 2 of your items" in user.get("/items").get_data(as_text=True)
    statements = _count_queries(app)
    assert "All 2 of your items" in user.get("/items").get_data(as_text=True)
    assert not any("count(" in s.lower() for s in statements), statements
    user.post("/items", data={"name": "Three", "price": "1", "status": "draft"})
    assert "All 3 of your items" in user.get("/items").get_data(as_text=True)
    db.dispose(app)
