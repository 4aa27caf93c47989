"""Searched pages of the items table by number, shown from cached windows of ids
(app/services/item_search.py): the same rows in the same order as a query, fresh after
every write, and no search statement for another page of a window already read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.services.item_search import CACHED_PAGES, CHUNK_PAGES
from tests.conftest import login
from tests.factories import seed_items

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
    assert statements and not any("LIKE" in s.upper() for s in statements), statements
    assert _shown(viewer, f"q=amber&sort=price&per_page={PER_PAGE}&page={CHUNK_PAGES + 1}")
    assert any("LIKE" in s.upper() for s in statements)  # the next window is read


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


def test_pages_past_the_cached_ones_query_as_before(app: Flask, accounts: dict[str, int]) -> None:
    count = (CACHED_PAGES + 1) * PER_PAGE + 3
    ids = seed_items(
        app, accounts["user"], [(f"Amber {n:04d}", "1", "draft") for n in range(count)]
    )
    viewer = _viewer(app)
    page = CACHED_PAGES + 2
    assert _shown(viewer, f"q=amber&sort=id&per_page={PER_PAGE}&page={page}") == ids[-3:]
