"""Searched pages of the items table by number, shown from cached windows of ids
(app/services/item_search.py): the same rows in the same order as a query, fresh after
every write, and no search statement for another page of a window already read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from app.extensions import db
from app.services import item_search
from app.services.item_search import CHUNK_PAGES
from tests.conftest import _build_app, login, make_settings
from tests.factories import make_role_accounts, seed_items

PER_PAGE = 10
NAMES = ("Amber Lamp", "Blue amber", "Cobalt ambergris", "Zinc AMBER", "Plain Chair")


@pytest.fixture
def seeded(app: Flask, accounts: dict[str, int]) -> list[dict[str, Any]]:
    """75 items, 60 of them matching "amber" in some case, prices repeating (ties by id)."""
    rows = [(f"{NAMES[n % 5]} {n:03d}", f"{n % 7}.50", "active") for n in range(75)]
    ids = seed_items(app, accounts["user"], rows)
    return [
        {"id": i, "name": name, "name_key": name.lower(), "price": Decimal(price)}
        for i, (name, price, _) in zip(ids, rows, strict=True)
    ]


def _viewer(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, "user@example.com").status_code == 303
    return client


def _shown(client: FlaskClient, query: str) -> list[int]:
    answer = client.get(f"/items?{query}")
    assert answer.status_code == 200
    return [int(i) for i in re.findall(r'<tr id="item-(\d+)"', answer.get_data(as_text=True))]


def _expected(items: list[dict[str, Any]], sort: str, direction: str, page: int) -> list[int]:
    matching = [i for i in items if "amber" in i["name_key"]]
    ordered = sorted(matching, key=lambda i: (i[sort], i["id"]), reverse=direction == "desc")
    return [i["id"] for i in ordered[(page - 1) * PER_PAGE : page * PER_PAGE]]


def _reads_a_window(statement: str) -> bool:
    """A search that pages in SQL (a window of ids, or a page queried directly), as
    opposed to rows read by their ids."""
    upper = statement.upper()
    return "LIKE" in upper and "OFFSET" in upper


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The statements run on any engine (the read pool's too) from now on; clear it to
    start afresh. The outbox poll the test app makes after each request is left out."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        if not args[2].lstrip().startswith("SELECT outbox."):
            seen.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("sort", ["name", "price", "id"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_page_shows_the_rows_a_query_would(
    app: Flask, seeded: list[dict[str, Any]], sort: str, direction: str
) -> None:
    viewer = _viewer(app)
    pages = 60 // PER_PAGE + 1  # the last one is past the end: empty
    for page in range(1, pages + 1):  # crosses a window's edge (CHUNK_PAGES pages)
        query = f"q=AMBER&sort={sort}&dir={direction}&per_page={PER_PAGE}&page={page}"
        assert _shown(viewer, query) == _expected(seeded, sort, direction, page), page


def test_another_page_of_a_window_runs_no_search(
    app: Flask, seeded: list[dict[str, Any]], statements: list[str]
) -> None:
    viewer = _viewer(app)
    _shown(viewer, f"q=amber&sort=price&per_page={PER_PAGE}&page=1")
    statements.clear()
    assert _shown(viewer, f"q=amber&sort=price&per_page={PER_PAGE}&page={CHUNK_PAGES}")
    assert statements and not any(_reads_a_window(s) for s in statements), statements
    assert _shown(viewer, f"q=amber&sort=price&per_page={PER_PAGE}&page={CHUNK_PAGES + 1}")
    assert any(_reads_a_window(s) for s in statements)  # the next window is read


def test_a_write_shows_on_the_next_view(app: Flask, seeded: list[dict[str, Any]]) -> None:
    viewer = _viewer(app)
    first = _shown(viewer, f"q=amber&sort=name&per_page={PER_PAGE}")
    renamed = first[0]
    saved = viewer.post(
        f"/items/{renamed}", data={"name": "Renamed", "price": "1.00", "status": "active"}
    )
    assert saved.status_code == 303
    after = _shown(viewer, f"q=amber&sort=name&per_page={PER_PAGE}")
    assert renamed not in after and after[: PER_PAGE - 1] == first[1:]
    created = viewer.post("/items", data={"name": "Aaa amber", "price": "1", "status": "draft"})
    assert created.status_code == 303
    html = viewer.get(f"/items?q=amber&sort=name&per_page={PER_PAGE}").get_data(as_text=True)
    assert "Aaa amber" in html and "60 items" in html


def test_pages_past_the_cached_ones_query_as_before(
    app: Flask, accounts: dict[str, int], statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_search, "CACHED_PAGES", 3)  # fewer rows than 20 pages of them
    rows = [(f"Amber {n:04d}", "1", "draft" if n % 2 else "active") for n in range(50)]
    ids = seed_items(app, accounts["user"], rows)
    viewer = _viewer(app)
    for page in (3, 4):
        statements.clear()
        expected = ids[(page - 1) * PER_PAGE : page * PER_PAGE]
        assert _shown(viewer, f"q=amber&sort=id&per_page={PER_PAGE}&page={page}") == expected
        direct = any(_reads_a_window(s) and "JOIN" in s.upper() for s in statements)
        assert direct == (page > 3), (page, statements)
    active = [i for n, i in enumerate(ids) if n % 2 == 0]
    query = f"q=amber&status=active&sort=id&dir=desc&per_page={PER_PAGE}&page=2"
    assert _shown(viewer, query) == active[::-1][PER_PAGE : 2 * PER_PAGE]


def test_a_row_changed_behind_the_apps_back_drops_out_of_its_page(
    app: Flask, seeded: list[dict[str, Any]]
) -> None:
    """The ids are kept, but a page reads its rows with the search applied again: a
    change made by hand in SQL (no event, so nothing is invalidated) shows at once."""
    viewer = _viewer(app)
    _shown(viewer, f"q=amber&sort=id&per_page={PER_PAGE}&page=1")  # reads pages 1-5's ids
    second = _expected(seeded, "id", "asc", 2)
    with app.app_context(), db.transaction() as session:
        session.execute(
            text("UPDATE item SET name = 'Renamed by hand' WHERE id = :id"), {"id": second[0]}
        )
    assert _shown(viewer, f"q=amber&sort=id&per_page={PER_PAGE}&page=2") == second[1:]


def test_without_a_shared_cache_every_searched_page_queries(
    sqlite_url: str, tmp_path: Path, statements: list[str]
) -> None:
    """Without Redis (TABLE_CACHE_TTL 0) another worker's write would not reach this
    one's cached ids, so none are kept."""
    app = _build_app(make_settings(tmp_path, database_url=sqlite_url, table_cache_ttl=0))
    with app.app_context(), db.transaction() as session:
        owner = make_role_accounts(session)["user"]
    seed_items(app, owner, [(f"Amber {n}", "1", "active") for n in range(30)])
    viewer = _viewer(app)
    for page in (1, 2):
        statements.clear()
        assert len(_shown(viewer, f"q=amber&per_page={PER_PAGE}&page={page}")) == PER_PAGE
        assert any(_reads_a_window(s) and "JOIN" in s.upper() for s in statements)
    db.dispose(app)
