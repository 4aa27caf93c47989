"""Bad input found by hostile testing: each once answered 500, some after a write.

Each must answer a clear 4xx (or be ignored) and change nothing: keyset cursors
holding text no column can hold, record ids past the INTEGER key, digits
`int()` refuses in bulk ids, a price of -0.0 through the API, and htmx targets
no view knows. tests/security/test_hostile_routes.py walks every route with
such values; these tests pin each finding down where a user meets it.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.core.listing import MAX_SEARCH_LENGTH
from app.core.middleware import MAX_QUERY_BYTES
from app.extensions import db
from app.models import AuditLog, Item, User
from app.services import audit as audit_log
from app.services import items as item_service
from app.services import users as user_service
from tests.conftest import login
from tests.factories import PASSWORD, seed_items

ROW = re.compile(r'<tr id="(?:item|user|audit)-(\d+)"')
TABLES = {  # page -> the listing its cursors are decoded by
    "/items": item_service.LISTING,
    "/admin/users": user_service.LISTING,
    "/admin/audit": audit_log.LISTING,
}
TEXT_NO_COLUMN_HOLDS = ("\ud800", "a\udfffb", "a\x00b")
BAD_VALUES = {  # by the Python type the listing declares for a sort key
    str: TEXT_NO_COLUMN_HOLDS,
    int: (2**31, 2**63, -1, "\ud800", "²"),
    Decimal: (*TEXT_NO_COLUMN_HOLDS, "1e999999", "NaN", "-Infinity", "1" + "0" * 30, "١٢"),
    "datetime": (
        *TEXT_NO_COLUMN_HOLDS,
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "2024-05-01T10:00:00",  # no zone
        "2024-05-01T10:00:00+00:00\ud800",
    ),
}
BAD_IDS = (2**31, 2**63, "\ud800", "9" * 40)


def cursor(value: Any, row_id: Any, kind: str = "a") -> str:
    """A keyset cursor as the pager encodes one (`json` escapes lone surrogates)."""
    raw = json.dumps([value, row_id]).encode()
    return f"{kind}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.0"


def _rows(html: str) -> list[str]:
    return ROW.findall(html)


def _snapshot(app: Flask) -> tuple[Any, ...]:
    with app.app_context():
        items = db.session.execute(
            select(Item.id, Item.name, Item.status, Item.price).order_by(Item.id)
        ).all()
        users = db.session.execute(
            select(User.id, User.email, User.role, User.is_active).order_by(User.id)
        ).all()
        audit = db.session.scalar(select(func.count()).select_from(AuditLog))
        return tuple(items), tuple(users), audit


@pytest.fixture
def items(app: Flask, accounts: dict[str, int]) -> list[int]:
    """A dozen items of `user`'s and one of the admin's."""
    mine = seed_items(
        app, accounts["user"], [(f"item {n:02}", f"{n}.50", "active") for n in range(12)]
    )
    return mine + seed_items(app, accounts["admin"], [("admin's", "1", "draft")])


# --- keyset cursors ---------------------------------------------------------------------


def test_cursors_holding_values_no_column_can_hold_are_ignored_on_every_table(
    as_admin: FlaskClient, items: list[int]
) -> None:
    checked = 0
    for path, listing in TABLES.items():
        for sort, kind in listing.sortable.items():
            plain = as_admin.get(path, query_string={"sort": sort})
            expected = _rows(plain.get_data(as_text=True))
            assert plain.status_code == 200 and expected, (path, sort)
            bad = BAD_VALUES.get(kind, BAD_VALUES["datetime"])
            cursors = [cursor(v, 1) for v in bad] + [cursor("x", i) for i in BAD_IDS]
            for raw in cursors:
                response = as_admin.get(path, query_string={"sort": sort, "cursor": raw})
                assert response.status_code == 200, (path, sort, raw, response.status_code)
                # the cursor is ignored: the first page, as without it
                assert _rows(response.get_data(as_text=True)) == expected, (path, sort, raw)
                checked += 1
    assert checked > 100


# --- ids past the INTEGER key -----------------------------------------------------------


@pytest.mark.parametrize("huge", [2**31, 2**63, int("9" * 40)])
def test_ids_past_the_integer_key_answer_404_on_pages_and_admin_routes(
    app: Flask, as_admin: FlaskClient, items: list[int], huge: int
) -> None:
    before = _snapshot(app)
    requests = [
        ("GET", f"/items/{huge}", {}),
        ("GET", f"/items/{huge}/row", {}),
        ("GET", f"/items/{huge}/edit", {}),
        ("GET", f"/items/{huge}/delete", {}),
        ("POST", f"/items/{huge}", {"name": "x", "price": "1"}),
        ("POST", f"/items/{huge}/delete", {}),
        ("POST", f"/admin/users/{huge}", {"role": "guest"}),
        ("POST", f"/admin/users/{huge}/delete", {}),
    ]
    for headers in ({}, {"HX-Request": "true", "HX-Target": f"tr#item-{huge}"}):
        for method, path, data in requests:
            response = as_admin.open(  # a plain /row request is sent on to the item page
                path, method=method, data=data, headers=headers, follow_redirects=True
            )
            assert response.status_code == 404, (method, path, headers, response.status_code)
            assert "No such" in response.get_data(as_text=True)  # item, or user
    assert _snapshot(app) == before


@pytest.mark.parametrize(
    "ids",
    [
        ["²"],  # str.isdigit() says yes, int() says no
        ["١"],  # an Arabic-Indic one: int() would take it as 1
        [str(2**31)],
        ["9" * 40],
        ["-1", "0", " 1", "1.0", "0x1", ""],
    ],
)
def test_bulk_ids_that_name_no_row_are_left_out(
    app: Flask, as_admin: FlaskClient, items: list[int], ids: list[str]
) -> None:
    before = _snapshot(app)
    alone = as_admin.post("/items/bulk", data={"ids": ids, "action": "archive"})
    assert alone.status_code == 303
    page = as_admin.get("/items").get_data(as_text=True)
    assert "Select at least one item first." in page or "Archived 0 items." in page
    assert _snapshot(app) == before
    # beside a real id, only the real one is archived
    mixed = as_admin.post("/items/bulk", data={"ids": [*ids, str(items[0])], "action": "archive"})
    assert mixed.status_code == 303
    assert "Archived 1 item." in as_admin.get("/items").get_data(as_text=True)
    with app.app_context():
        statuses = dict(db.session.execute(select(Item.id, Item.status)).all())
    assert statuses[items[0]] == "archived"
    assert sorted(set(statuses.values())) == ["active", "archived", "draft"]
    assert list(statuses.values()).count("archived") == 1


# --- -0.0 through the API ---------------------------------------------------------------


def _token(client: FlaskClient) -> dict[str, str]:
    body = {"email": "user@example.com", "password": PASSWORD}
    token = client.post("/api/v1/auth/login", json=body).json["access_token"]  # type: ignore[index]
    return {"Authorization": f"Bearer {token}"}


def _item_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Item)) or 0)


def test_a_price_of_negative_zero_is_saved_once_as_zero(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    auth = _token(client)
    before = _item_count(app)
    created = client.post(
        "/api/v1/items",
        data='{"name": "free", "price": -0.0}',  # the JSON number, as a client sends it
        content_type="application/json",
        headers=auth,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.json["price"] == "0.00"  # type: ignore[index]
    assert _item_count(app) == before + 1
    item_url = created.headers["Location"]
    patched = client.patch(
        item_url, data='{"price": -0.0}', content_type="application/json", headers=auth
    )
    assert patched.status_code == 200 and patched.json["price"] == "0.00"  # type: ignore[index]
    # as text, a minus sign is not a price at all: refused, nothing saved
    for text in ("-0.0", "-0", "-0.00"):
        refused = client.post("/api/v1/items", json={"name": "x", "price": text}, headers=auth)
        assert refused.status_code == 422, text
        assert refused.json["errors"] == {"price": "Enter a price such as 12.50."}  # type: ignore[index]
    assert _item_count(app) == before + 1


# --- htmx targets no view knows ---------------------------------------------------------

UNKNOWN_TARGETS = (
    {"HX-Request": "true", "HX-Target": "div#nonsense"},
    {"HX-Request": "true", "HX-Request-Type": "full"},  # a boosted link: the whole page
)


def _user_row(html: str, user_id: int) -> str:
    found = re.search(rf'<tr id="user-{user_id}">.*?</tr>', html, re.DOTALL)
    return found.group(0) if found else ""


def _shown(client: FlaskClient, response: Any) -> str:
    """What the user ends up looking at: the answer, or the page htmx is sent on to."""
    location = response.headers.get("HX-Redirect")
    if location:
        page = client.get(location, follow_redirects=True)
        assert page.status_code == 200, (location, page.status_code)
        return str(page.get_data(as_text=True))
    return str(response.get_data(as_text=True))


def test_unknown_hx_target_never_saves_then_fails(
    app: Flask, client: FlaskClient, accounts: dict[str, int], items: list[int]
) -> None:
    item_id = items[0]
    login(client, "admin@example.com")
    for n, headers in enumerate(UNKNOWN_TARGETS):
        for path in (f"/items/{item_id}/row", f"/items/{item_id}/edit"):
            response = client.get(path, headers=headers, follow_redirects=True)
            assert response.status_code < 500, (path, headers, response.status_code)
        name = f"Renamed by htmx {n}"
        response = client.post(
            f"/items/{item_id}",
            data={"name": name, "price": "3", "status": "active"},
            headers=headers,
            follow_redirects=True,
        )
        assert response.status_code < 500, (headers, response.status_code)
        with app.app_context():
            saved = db.session.get(Item, item_id)
            assert saved is not None
        if saved.name == name:  # saved: then what the user is shown says so
            assert name in _shown(client, response), headers
        with app.app_context():
            user = db.session.get(User, accounts["user"])
            assert user is not None
            role = "guest" if user.role != "guest" else "user"
        response = client.post(
            f"/admin/users/{accounts['user']}",
            data={"role": role},
            headers=headers,
            follow_redirects=True,
        )
        assert response.status_code < 500, (headers, response.status_code)
        with app.app_context():
            user = db.session.get(User, accounts["user"])
            assert user is not None
        if user.role == role:  # saved: then what the user is shown says so
            row = _user_row(_shown(client, response), accounts["user"])
            assert f'<option value="{role}" selected>' in row, headers


# --- oversized query strings ------------------------------------------------------------


def test_no_page_links_to_a_query_string_it_would_refuse(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    # names as long as they may be, in characters that JSON spells as 12 bytes each
    long_names = [("\U0001f4a5" * 199 + chr(ord("a") + n), "1", "active") for n in range(25)]
    seed_items(app, accounts["user"], long_names)
    q = "\U0001f4a5" * MAX_SEARCH_LENGTH  # 1,200 bytes in a URL
    first = as_user.get("/items", query_string={"sort": "name", "per_page": 10, "q": q})
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and len(_rows(html)) == 10
    found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
    assert found, "no next link"
    link = found.group(1).replace("&amp;", "&")
    assert len(link.split("?", 1)[1]) < MAX_QUERY_BYTES, len(link)
    second = as_user.get(link)
    assert second.status_code == 200 and len(_rows(second.get_data(as_text=True))) == 10
    # a query string past the limit is refused before anything runs
    huge = as_user.get("/items", query_string={"q": "x" * 5000})
    assert huge.status_code == 414 and "too long" in huge.get_data(as_text=True)
