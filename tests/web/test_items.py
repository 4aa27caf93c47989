"""The items DataTable and item pages over HTTP: URL state, fragments, keyset paging, rules."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, Item
from tests.factories import seed_items

HX = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#items-table"}


@pytest.fixture
def catalog(app: Flask, accounts: dict[str, int]) -> dict[str, list[int]]:
    """Items owned by user (names a..) and by admin (names z..)."""
    mine = seed_items(
        app,
        accounts["user"],
        [(f"a-item {n:02}", str(n), "active" if n % 2 else "draft") for n in range(1, 31)],
    )
    theirs = seed_items(app, accounts["admin"], [("z-admin item", "99", "archived")])
    return {"mine": mine, "theirs": theirs}


def _cursor(value: object, item_id: int) -> str:
    """An 'after' cursor for a sort value and an id, as the pager encodes them."""
    raw = json.dumps([value, item_id]).encode()
    return f"a.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.0"


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/items/\d+">([^<]+)</a>', html)


def test_table_fragment_is_only_the_region(
    as_user: FlaskClient, catalog: dict[str, list[int]]
) -> None:
    response = as_user.get("/items?sort=name&dir=asc", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="items-table"') and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]
    full = as_user.get("/items?sort=name&dir=asc")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_table_fragment_carries_the_export_link_for_its_view_out_of_band(
    as_user: FlaskClient, catalog: dict[str, list[int]]
) -> None:
    html = as_user.get("/items?sort=price&dir=desc&status=draft&q=a-item", headers=HX).get_data(
        as_text=True
    )
    link = re.search(r'<a id="export-link"[^>]*>', html)
    assert link is not None and 'hx-swap-oob="true"' in link.group(0)
    assert 'href="/items/export.csv?sort=price&amp;dir=desc&amp;q=a-item&amp;status=draft"' in (
        link.group(0)
    )
    page = as_user.get("/items?status=draft").get_data(as_text=True)
    assert page.count('id="export-link"') == 1 and "hx-swap-oob" not in page


def test_boosted_and_history_restore_requests_get_the_whole_page(
    as_user: FlaskClient, catalog: dict
) -> None:
    for extra in (
        {"HX-Boosted": "true"},
        {"HX-History-Restore-Request": "true"},
        {"HX-Request-Type": "full"},
    ):
        html = as_user.get("/items", headers={**HX, **extra}).get_data(as_text=True)
        assert "<html" in html


def test_sorting_both_ways_with_direction_indicators(as_user: FlaskClient, catalog: dict) -> None:
    asc = as_user.get("/items?sort=name&dir=asc&per_page=10").get_data(as_text=True)
    assert names(asc)[:3] == ["a-item 01", "a-item 02", "a-item 03"]
    assert 'aria-sort="ascending"' in asc and "▲" in asc
    assert re.search(
        r'href="/items\?sort=name&amp;dir=desc[&"]', asc
    )  # the header offers the other way
    desc = as_user.get("/items?sort=name&dir=desc&per_page=10").get_data(as_text=True)
    assert names(desc)[:2] == ["z-admin item", "a-item 30"]
    by_price = as_user.get("/items?sort=price&dir=desc&per_page=10").get_data(as_text=True)
    assert names(by_price)[:2] == ["z-admin item", "a-item 30"]


def test_default_view_shows_the_sort_indicator_on_first_render(
    as_user: FlaskClient, catalog: dict
) -> None:
    html = as_user.get("/items").get_data(as_text=True)
    assert re.search(
        r'aria-sort="descending"[^>]*>\s*<a[^>]*>Created<span class="sort-indicator"[^>]*>▼', html
    )


@pytest.mark.parametrize(
    "query",
    [
        "sort=name;DROP TABLE item",
        "sort=CASE WHEN (1=1) THEN name ELSE price END",
        "sort=pg_sleep(3)",
        "sort=password_hash",
        "sort=name&dir=desc;DELETE",
        "page=-4",
        "page=abc",
        "per_page=1000000",
        "per_page=-1",
        "cursor=a.bm90LWpzb24.0",
        "cursor=a.WyJ4IiwxXQ.999999",
        "q=" + "x" * 4000,  # past 4,096 bytes the query string is 414 (tests/security)
        "q=a-item%00",
        # Hand-made cursors whose values no column can hold (each answered 500 once).
        "sort=created_at&dir=desc&page=2&cursor=" + _cursor("0001-01-01T00:00:00+14:00", 1),
        "sort=created_at&dir=desc&page=2&cursor=" + _cursor("2024-05-01T10:00:00", 1),
        "sort=created_at&dir=desc&page=2&cursor=" + _cursor("2024-05-01T10:00:00+00:00", 2**40),
        "sort=price&dir=desc&page=2&cursor=" + _cursor("1e999999", 1),
        "sort=price&dir=desc&page=2&cursor=" + _cursor("NaN", 1),
        "sort=name&dir=asc&page=2&cursor=" + _cursor("a\x00b", 1),
        "sort=id&dir=asc&page=2&cursor=" + _cursor(-5, 1),
    ],
)
def test_hostile_or_odd_parameters_are_normalised_quickly(
    as_user: FlaskClient, catalog: dict, query: str
) -> None:
    started = time.perf_counter()
    response = as_user.get("/items?" + query)
    assert response.status_code == 200
    assert time.perf_counter() - started < 1.0
    assert "a-item" in response.get_data(as_text=True) or "x" * 100 in query


def test_keyset_next_link_gives_the_same_rows_as_offset(
    as_user: FlaskClient, catalog: dict
) -> None:
    first = as_user.get("/items?sort=name&dir=asc&per_page=10").get_data(as_text=True)
    next_href = re.search(r'href="([^"]+)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "cursor=a." in next_href and "page=2" in next_href
    by_cursor = names(as_user.get(next_href).get_data(as_text=True))
    by_offset = names(
        as_user.get("/items?sort=name&dir=asc&per_page=10&page=2").get_data(as_text=True)
    )
    assert by_cursor == by_offset == [f"a-item {n:02}" for n in range(11, 21)]
    page2 = as_user.get(next_href).get_data(as_text=True)
    prev_href = re.search(r'href="([^"]+)"[^>]*rel="prev"', page2).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert names(as_user.get(prev_href).get_data(as_text=True)) == [
        f"a-item {n:02}" for n in range(1, 11)
    ]


def test_last_page_and_page_numbers(as_user: FlaskClient, catalog: dict) -> None:
    html = as_user.get("/items?sort=name&dir=asc&per_page=10").get_data(as_text=True)
    last = (
        re.search(r'href="([^"]+)"[^>]*aria-label="Last page"', html).group(1).replace("&amp;", "&")
    )  # type: ignore[union-attr]
    assert "cursor=last" in last and "page=4" in last
    assert names(as_user.get(last).get_data(as_text=True)) == ["z-admin item"]
    three = (
        re.search(r'href="([^"]+)"[^>]*aria-label="Page 3"', html).group(1).replace("&amp;", "&")
    )  # type: ignore[union-attr]
    assert names(as_user.get(three).get_data(as_text=True)) == [
        f"a-item {n:02}" for n in range(21, 31)
    ]


def test_search_resets_to_page_one_and_paging_keeps_search_and_sort(
    as_user: FlaskClient, catalog: dict
) -> None:
    html = as_user.get("/items?sort=name&dir=desc&page=2&per_page=10").get_data(as_text=True)
    form = re.search(r'<form id="items-search".*?</form>', html, re.S).group(0)  # type: ignore[union-attr]
    assert 'name="page"' not in form  # a new search starts at page 1
    assert 'name="sort" value="name" form="items-search"' in html
    found = as_user.get("/items?q=item 1&sort=name&dir=desc&per_page=10").get_data(as_text=True)
    assert names(found)[0] == "a-item 19"
    next_href = re.search(r'href="([^"]+)"[^>]*rel="next"', found)
    assert next_href is None or (
        "q=item" in next_href.group(1) and "sort=name" in next_href.group(1)
    )


def test_filter_by_status(as_user: FlaskClient, catalog: dict) -> None:
    html = as_user.get("/items?status=archived").get_data(as_text=True)
    assert names(html) == ["z-admin item"]
    assert as_user.get("/items?status=bogus").status_code == 200


def test_create_item_with_validation(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    bad = as_user.post(
        "/items",
        data={"name": "", "price": "-3", "status": "sold"},
        headers={"HX-Request": "true", "HX-Target": "form#item-form"},
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "<html" not in html
    assert (
        "Enter a name." in html and "cannot be negative" in html and "Status must be one of" in html
    )
    good = as_user.post(
        "/items",
        data={
            "name": "Lamp",
            "price": "12.50",
            "status": "active",
            "description": "A desk lamp\nwith a long arm.",
        },
    )
    assert good.status_code == 303 and re.match(r"/items/\d+$", good.headers["Location"])
    with app.app_context():
        item = db.session.scalars(select(Item).where(Item.name == "Lamp")).one()
        assert item.owner_id == accounts["user"] and item.price == Decimal("12.50")
        assert item.description == "A desk lamp\nwith a long arm."
        assert db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "item.created")
        ).one()


def test_inline_edit_round_trip(app: Flask, as_user: FlaskClient, catalog: dict) -> None:
    item_id = catalog["mine"][0]
    row = as_user.get(f"/items/{item_id}/edit", headers={**HX, "HX-Target": f"tr#item-{item_id}"})
    html = row.get_data(as_text=True)
    assert (
        row.status_code == 200
        and html.lstrip().startswith(f'<tr id="item-{item_id}"')
        and 'name="price"' in html
    )
    bad = as_user.post(
        f"/items/{item_id}",
        data={"name": "x", "price": "1.234", "status": "active"},
        headers={**HX, "HX-Target": f"tr#item-{item_id}"},
    )
    assert bad.status_code == 422 and "Use at most two decimals." in bad.get_data(as_text=True)
    saved = as_user.post(
        f"/items/{item_id}",
        data={"name": "Renamed", "price": "7", "status": "archived"},
        headers={**HX, "HX-Target": f"tr#item-{item_id}"},
    )
    assert saved.status_code == 200 and "Renamed" in saved.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Item, item_id).name == "Renamed"  # type: ignore[union-attr]
        rows = db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "item.updated")
        ).all()
        assert rows[-1].data["fields"] == ["name", "price", "status"]


def test_delete_refreshes_the_table_region(app: Flask, as_user: FlaskClient, catalog: dict) -> None:
    item_id = catalog["mine"][0]
    response = as_user.post(
        f"/items/{item_id}/delete",
        headers={**HX, "HX-Current-URL": "http://localhost/items?sort=name&dir=asc"},
    )
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#items-table"
    html = response.get_data(as_text=True)
    assert "a-item 01" not in names(html) and names(html)[0] == "a-item 02"
    assert "“a-item 01” has been deleted." in html  # the flash rides along out of band
    with app.app_context():
        assert db.session.get(Item, item_id) is None


def test_other_users_item_answers_404_like_a_missing_one(
    as_user: FlaskClient, catalog: dict
) -> None:
    theirs = catalog["theirs"][0]
    for method, path in (
        ("GET", f"/items/{theirs}/edit"),
        ("GET", f"/items/{theirs}/delete"),
        ("POST", f"/items/{theirs}"),
        ("POST", f"/items/{theirs}/delete"),
    ):
        other = as_user.open(path, method=method, data={"name": "hijack", "price": "1"})
        missing = as_user.open(
            path.replace(str(theirs), "999999"), method=method, data={"name": "x", "price": "1"}
        )
        assert other.status_code == missing.status_code == 404
    assert as_user.get(f"/items/{theirs}").status_code == 200  # reading is allowed


def test_admin_may_change_anyones_item(as_admin: FlaskClient, catalog: dict) -> None:
    mine = catalog["mine"][0]
    assert (
        as_admin.post(
            f"/items/{mine}", data={"name": "By admin", "price": "1", "status": "draft"}
        ).status_code
        == 303
    )


def test_guest_reads_but_cannot_write(as_guest: FlaskClient, catalog: dict) -> None:
    html = as_guest.get("/items").get_data(as_text=True)
    assert "New item" not in html and "/edit" not in html and "bulk-bar" not in html
    item_id = catalog["mine"][0]
    for path in ("/items", f"/items/{item_id}", f"/items/{item_id}/delete", "/items/bulk"):
        assert as_guest.post(path, data={"name": "x", "price": "1"}).status_code == 403
    assert as_guest.get("/items/new").status_code == 403
    assert as_guest.get(f"/items/{item_id}/delete").status_code == 403


def test_delete_without_javascript_asks_on_its_own_page(
    app: Flask, as_user: FlaskClient, catalog: dict
) -> None:
    """The row's Delete link (hx-post with JavaScript) leads plain browsers to a question."""
    item_id = catalog["mine"][0]
    table = as_user.get("/items?sort=name&dir=asc").get_data(as_text=True)
    assert f'href="/items/{item_id}/delete" hx-post="/items/{item_id}/delete"' in table
    page = as_user.get(f"/items/{item_id}/delete")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Delete “a-item 01”?" in html
    assert f'<form method="post" action="/items/{item_id}/delete"' in html
    assert 'name="csrf_token"' in html
    with app.app_context():
        assert db.session.get(Item, item_id) is not None  # asking deletes nothing
    done = as_user.post(f"/items/{item_id}/delete")
    assert done.status_code == 303 and done.headers["Location"] == "/items"
    with app.app_context():
        assert db.session.get(Item, item_id) is None


def test_bulk_action_on_selected_rows_skips_others_rows(
    app: Flask, as_user: FlaskClient, catalog: dict
) -> None:
    ids = [*catalog["mine"][:3], catalog["theirs"][0]]
    response = as_user.post(
        "/items/bulk", data={"action": "archive", "ids": [str(i) for i in ids]}, headers=HX
    )
    assert response.status_code == 200
    with app.app_context():
        statuses = {i: db.session.get(Item, i).status for i in ids}  # type: ignore[union-attr]
    assert [statuses[i] for i in catalog["mine"][:3]] == ["archived"] * 3
    assert statuses[catalog["theirs"][0]] == "archived"  # it already was; not touched by the user
    with app.app_context():
        row = db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "item.updated")
        ).one()
        assert row.data["count"] == 3 and row.data["bulk"] is True


def test_bulk_delete_everything_matching_the_filter(
    app: Flask, as_user: FlaskClient, catalog: dict
) -> None:
    response = as_user.post(
        "/items/bulk", data={"action": "delete", "scope": "all", "status": "draft", "q": "a-item"}
    )
    assert response.status_code == 303
    with app.app_context():
        left = db.session.scalars(select(Item.status)).all()
    assert sorted(set(left)) == ["active", "archived"] and len(left) == 16


def test_csv_export_is_the_current_filtered_sorted_view(
    as_user: FlaskClient, catalog: dict, app: Flask, accounts: dict[str, int]
) -> None:
    seed_items(app, accounts["user"], [('=HYPERLINK("http://evil")', "1", "active")])
    response = as_user.get("/items/export.csv?status=active&sort=price&dir=desc")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["status"] for r in rows] == ["active"] * 16
    prices = [Decimal(r["price"]) for r in rows]
    assert prices == sorted(prices, reverse=True)
    assert any(r["name"].startswith("'=HYPERLINK") for r in rows)  # formula neutralised


def test_row_fragment_url_opened_directly_goes_to_the_item_page(
    as_user: FlaskClient, catalog: dict
) -> None:
    item_id = catalog["theirs"][0]
    plain = as_user.get(f"/items/{item_id}/row")
    assert plain.status_code == 303 and plain.headers["Location"] == f"/items/{item_id}"
    fragment = as_user.get(
        f"/items/{item_id}/row", headers={**HX, "HX-Target": f"tr#item-{item_id}"}
    )
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and html.lstrip().startswith(f'<tr id="item-{item_id}"')
    assert "<html" not in html and "/edit" not in html  # someone else's row: no actions


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"sort": "price", "dir": "desc", "status": "draft", "per_page": "50", "page": "3"},
        {"q": "a/b:c?d@e!$'()*,; &=+#%<>\"ü “x” ☃"},
        {"q": "  spaced  out  ", "cursor": "last", "page": "9"},
    ],
)
def test_export_link_is_the_one_url_for_builds(app: Flask, args: dict[str, str]) -> None:
    from flask import url_for

    from app.web.items import SPEC, _export_query
    from app.web.tables import TableState, TableView

    with app.test_request_context("/items"):
        state = TableState.from_args(SPEC, args)
        view = TableView(SPEC, state, lambda _q, _s: None)  # type: ignore[arg-type, return-value]
        expected = url_for("items.export_csv", **state.params(page=1, cursor=""))
        assert f"{url_for('items.export_csv')}?{_export_query(view)}" == expected
