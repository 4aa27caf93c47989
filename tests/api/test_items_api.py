"""The items and users JSON API: list semantics, writes and their audit, and who may do what."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, User
from tests.factories import PASSWORD, seed_items

PROBLEM = "application/problem+json"
INJECTIONS = (
    "name;DROP TABLE item",
    "name; DROP TABLE item--",
    "CASE WHEN (1=1) THEN name ELSE price END",
    "pg_sleep(3)",
    "(SELECT pg_sleep(3))",
    "password_hash",
    "owner.password_hash",
    "name desc",
    "1",
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(client: FlaskClient, accounts: dict[str, int]) -> dict[str, dict[str, str]]:
    """Authorization headers by role."""
    out = {}
    for role in accounts:
        response = client.post(
            "/api/v1/auth/login", json={"email": f"{role}@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.json
        out[role] = bearer(response.json["access_token"])  # type: ignore[index]
    return out


@pytest.fixture
def catalog(app: Flask, accounts: dict[str, int]) -> dict[str, list[int]]:
    """Twelve items of `user` (names a-item 01..12) and one of `admin`."""
    mine = seed_items(
        app,
        accounts["user"],
        [(f"a-item {n:02}", f"{n}.50", "active" if n % 2 else "draft") for n in range(1, 13)],
    )
    theirs = seed_items(app, accounts["admin"], [("z-admin item", "99", "archived")])
    return {"mine": mine, "theirs": theirs}


def audit_rows(app: Flask, event_type: str) -> list[AuditLog]:
    with app.app_context():
        stmt = select(AuditLog).where(AuditLog.event_type == event_type).order_by(AuditLog.id)
        return list(db.session.scalars(stmt))


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.json
    assert body["status"] == status
    return body


def names(response: Any) -> list[str]:
    return [item["name"] for item in response.json["items"]]


# --- listing ----------------------------------------------------------------------------


def test_list_defaults_to_newest_first_with_paging_fields(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    response = client.get("/api/v1/items", headers=tokens["guest"])
    body = response.json
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert body.keys() == {"items", "page", "per_page", "total", "pages"}  # type: ignore[union-attr]
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 25, 13, 1)  # type: ignore[index]
    ids = [item["id"] for item in body["items"]]  # type: ignore[index]
    assert ids == sorted(ids, reverse=True)  # same created_at: id breaks ties, newest first
    first = body["items"][-1]  # type: ignore[index]
    assert first.keys() == {
        "id",
        "owner_id",
        "name",
        "description",
        "status",
        "price",
        "created_at",
        "updated_at",
        "owner_name",
    }
    assert first["price"] == "1.50" and first["description"] == "about a-item 01"


def test_list_names_each_owner_as_the_items_page_does(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    catalog: dict[str, list[int]],
    accounts: dict[str, int],
) -> None:
    with app.app_context(), db.transaction() as session:
        session.get(User, accounts["admin"]).name = ""  # type: ignore[union-attr]
    response = client.get("/api/v1/items", headers=tokens["guest"])
    owners = {item["name"]: item["owner_name"] for item in response.json["items"]}  # type: ignore[index]
    assert owners["a-item 01"] == "User" and owners["a-item 12"] == "User"
    assert owners["z-admin item"] == "admin@example.com"  # no name: the email, like the page


def test_an_owner_renamed_shows_under_the_new_name_at_once(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    def owners() -> set[str]:
        response = client.get("/api/v1/items?per_page=100", headers=tokens["guest"])
        return {item["owner_name"] for item in response.json["items"]}  # type: ignore[index]

    assert "User" in owners()  # the names are cached now
    renamed = client.patch("/api/v1/me", json={"name": "Renamed Owner"}, headers=tokens["user"])
    assert renamed.status_code == 200, renamed.json
    assert "Renamed Owner" in owners() and "User" not in owners()


def test_sort_both_ways(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    auth = tokens["user"]
    asc = client.get("/api/v1/items?sort=name&dir=asc&per_page=3", headers=auth)
    assert names(asc) == ["a-item 01", "a-item 02", "a-item 03"]
    desc = client.get("/api/v1/items?sort=name&dir=desc&per_page=2", headers=auth)
    assert names(desc) == ["z-admin item", "a-item 12"]
    by_price = client.get("/api/v1/items?sort=price&dir=desc&per_page=2", headers=auth)
    assert [i["price"] for i in by_price.json["items"]] == ["99.00", "12.50"]  # type: ignore[index]


def test_paging_search_and_status_filter(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    auth = tokens["user"]
    page2 = client.get("/api/v1/items?sort=name&dir=asc&per_page=5&page=2", headers=auth).json
    assert [i["name"] for i in page2["items"]] == [f"a-item {n:02}" for n in range(6, 11)]  # type: ignore[index]
    assert (page2["page"], page2["per_page"], page2["total"], page2["pages"]) == (2, 5, 13, 3)  # type: ignore[index]
    beyond = client.get("/api/v1/items?per_page=5&page=9", headers=auth).json
    assert beyond["items"] == [] and beyond["total"] == 13  # type: ignore[index]
    search = client.get("/api/v1/items", query_string={"q": "  ADMIN "}, headers=auth)
    assert names(search) == ["z-admin item"] and search.json["total"] == 1  # type: ignore[index]
    assert names(client.get("/api/v1/items?q=item%2011", headers=auth)) == ["a-item 11"]
    literal = client.get("/api/v1/items?q=%25", headers=auth)  # % matches itself only
    assert literal.json["total"] == 0  # type: ignore[index]
    drafts = client.get("/api/v1/items?status=draft&sort=name&dir=asc", headers=auth).json
    assert drafts["total"] == 6 and {i["status"] for i in drafts["items"]} == {"draft"}  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=" + "9" * 40, "page"),
        ("dir=sideways", "dir"),
        ("sort=owner_id", "sort"),
        ("status=deleted", "status"),
        ("q=" + "x" * 101, "q"),
        ("q=a%00b", "q"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(
    client: FlaskClient, tokens: dict[str, dict[str, str]], query: str, parameter: str
) -> None:
    body = assert_problem(client.get(f"/api/v1/items?{query}", headers=tokens["user"]), 400)
    assert parameter in body["errors"] and parameter in body["detail"]


def test_sort_injection_payloads_are_refused_quickly(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    for payload in INJECTIONS:
        for field in ("sort", "dir"):
            started = time.perf_counter()
            response = client.get(
                "/api/v1/items", query_string={field: payload}, headers=tokens["user"]
            )
            elapsed = time.perf_counter() - started
            assert assert_problem(response, 400)["errors"].keys() == {field}, payload
            assert elapsed < 1.0, (payload, elapsed)
    assert client.get("/api/v1/items", headers=tokens["user"]).json["total"] == 13  # type: ignore[index]


def test_unknown_query_parameters_are_ignored(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    response = client.get("/api/v1/items?_=1700000000&owner_id=1", headers=tokens["user"])
    assert response.status_code == 200 and response.json["total"] == 13  # type: ignore[index]


def test_list_needs_a_token(client: FlaskClient, accounts: dict[str, int]) -> None:
    assert_problem(client.get("/api/v1/items"), 401)


# --- reading one ------------------------------------------------------------------------


def test_get_one_item_and_missing_ids(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    theirs = catalog["theirs"][0]
    response = client.get(f"/api/v1/items/{theirs}", headers=tokens["guest"])
    assert response.status_code == 200 and response.json["name"] == "z-admin item"  # type: ignore[index]
    for missing in ("999999", "0", "-1", "abc", str(2**31), "9" * 40):
        assert_problem(client.get(f"/api/v1/items/{missing}", headers=tokens["user"]), 404)


# --- creating ---------------------------------------------------------------------------


def test_create_item_answers_201_with_location_and_audit(
    app: Flask, client: FlaskClient, tokens: dict[str, dict[str, str]], accounts: dict[str, int]
) -> None:
    response = client.post(
        "/api/v1/items",
        json={"name": "  Lamp ", "price": "12.5", "description": "Brass", "status": "active"},
        headers=tokens["user"],
    )
    body = response.json
    assert response.status_code == 201, body
    assert response.headers["Location"] == f"/api/v1/items/{body['id']}"  # type: ignore[index]
    assert body["name"] == "Lamp" and body["price"] == "12.50" and body["status"] == "active"  # type: ignore[index]
    assert body["owner_id"] == accounts["user"]  # type: ignore[index]
    assert client.get(response.headers["Location"], headers=tokens["user"]).json == body
    rows = audit_rows(app, "item.created")
    assert [(r.subject_id, r.actor_id) for r in rows] == [(str(body["id"]), accounts["user"])]  # type: ignore[index]
    numeric = client.post("/api/v1/items", json={"name": "Pen", "price": 3}, headers=tokens["user"])
    assert numeric.status_code == 201 and numeric.json["price"] == "3.00"  # type: ignore[index]
    assert numeric.json["status"] == "draft" and numeric.json["description"] == ""  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name", "price"}),
        ({"name": "   ", "price": "1"}, {"name"}),
        ({"name": "x" * 201, "price": "1"}, {"name"}),
        ({"name": "Lamp", "price": "1.001"}, {"price"}),
        ({"name": "Lamp", "price": "-1"}, {"price"}),
        ({"name": "Lamp", "price": "1e20"}, {"price"}),
        ({"name": "Lamp", "price": "cheap"}, {"price"}),
        ({"name": "Lamp", "price": True}, {"price"}),
        ({"name": "Lamp", "price": "1", "status": "deleted"}, {"status"}),
        ({"name": "a\x00b", "price": "1"}, {"name"}),
        ({"name": "Lamp", "price": "1", "owner_id": 1}, {"owner_id"}),
        ({"name": "Lamp", "price": "1", "id": 5}, {"id"}),
        ({"name": "Lamp", "price": "1", "created_at": "2020-01-01T00:00:00Z"}, {"created_at"}),
    ],
)
def test_create_validation_is_422_with_field_errors(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    body: dict[str, Any],
    fields: set[str],
) -> None:
    response = client.post("/api/v1/items", json=body, headers=tokens["user"])
    assert assert_problem(response, 422)["errors"].keys() == fields
    assert audit_rows(app, "item.created") == []


def test_create_with_a_non_object_body_is_422(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    for data in (b"[1]", b"null", b"{", b"", b'"x"'):
        response = client.post(
            "/api/v1/items", data=data, content_type="application/json", headers=tokens["user"]
        )
        assert assert_problem(response, 422)["errors"] == {"body": "Send a JSON object."}


# --- changing and deleting --------------------------------------------------------------


def test_patch_changes_only_given_fields_and_audits_them(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    catalog: dict[str, list[int]],
) -> None:
    item_id = catalog["mine"][0]
    before = client.get(f"/api/v1/items/{item_id}", headers=tokens["user"]).json
    response = client.patch(
        f"/api/v1/items/{item_id}", json={"price": 7, "status": "archived"}, headers=tokens["user"]
    )
    after = response.json
    assert response.status_code == 200, after
    assert (after["price"], after["status"], after["name"]) == ("7.00", "archived", "a-item 01")  # type: ignore[index]
    assert after["updated_at"] >= before["updated_at"]  # type: ignore[index]
    rows = audit_rows(app, "item.updated")
    assert len(rows) == 1 and rows[0].subject_id == str(item_id)
    assert rows[0].data["fields"] == ["price", "status"]
    unchanged = client.patch(f"/api/v1/items/{item_id}", json={}, headers=tokens["user"])
    assert unchanged.status_code == 200 and len(audit_rows(app, "item.updated")) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"owner_id": 1},
        {"id": 99},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"updated_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_patch_refuses_mass_assignment(
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    catalog: dict[str, list[int]],
    extra: dict[str, Any],
) -> None:
    item_id = catalog["mine"][0]
    response = client.patch(
        f"/api/v1/items/{item_id}", json={"name": "New", **extra}, headers=tokens["user"]
    )
    field = next(iter(extra))
    assert assert_problem(response, 422)["errors"] == {field: "This field may not be set."}
    unchanged = client.get(f"/api/v1/items/{item_id}", headers=tokens["user"]).json
    assert unchanged["name"] == "a-item 01"  # type: ignore[index]


def test_patch_refuses_null_and_invalid_values(
    client: FlaskClient, tokens: dict[str, dict[str, str]], catalog: dict[str, list[int]]
) -> None:
    url = f"/api/v1/items/{catalog['mine'][0]}"
    for body, field in (
        ({"name": None}, "name"),
        ({"price": None}, "price"),
        ({"name": ""}, "name"),
        ({"price": "0.001"}, "price"),
        ({"status": "gone"}, "status"),
    ):
        response = client.patch(url, json=body, headers=tokens["user"])
        assert assert_problem(response, 422)["errors"].keys() == {field}, body


def test_delete_answers_204_then_404_and_audits(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    catalog: dict[str, list[int]],
) -> None:
    item_id = catalog["mine"][0]
    response = client.delete(f"/api/v1/items/{item_id}", headers=tokens["user"])
    assert response.status_code == 204 and response.data == b""
    assert_problem(client.get(f"/api/v1/items/{item_id}", headers=tokens["user"]), 404)
    assert_problem(client.delete(f"/api/v1/items/{item_id}", headers=tokens["user"]), 404)
    assert [r.subject_id for r in audit_rows(app, "item.deleted")] == [str(item_id)]


# --- who may do what --------------------------------------------------------------------


def test_guest_gets_403_on_every_write(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    catalog: dict[str, list[int]],
) -> None:
    guest = tokens["guest"]
    for item_id in (catalog["mine"][0], catalog["theirs"][0], 999999):
        url = f"/api/v1/items/{item_id}"
        assert_problem(client.patch(url, json={"name": "G"}, headers=guest), 403)
        assert_problem(client.delete(url, headers=guest), 403)
    assert_problem(client.post("/api/v1/items", json={"name": "G", "price": 1}, headers=guest), 403)
    assert client.get("/api/v1/items", headers=guest).json["total"] == 13  # type: ignore[index]
    assert audit_rows(app, "item.updated") == audit_rows(app, "item.deleted") == []


def test_another_users_item_is_404_exactly_like_a_missing_one(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    accounts: dict[str, int],
    catalog: dict[str, list[int]],
) -> None:
    theirs, missing = catalog["theirs"][0], 999999
    user = tokens["user"]

    def without_instance(response: Any) -> dict[str, Any]:
        body = assert_problem(response, 404)
        return {k: v for k, v in body.items() if k != "instance"}

    for method, json in (("PATCH", {"name": "Mine now"}), ("DELETE", None)):
        other = client.open(f"/api/v1/items/{theirs}", method=method, json=json, headers=user)
        absent = client.open(f"/api/v1/items/{missing}", method=method, json=json, headers=user)
        assert without_instance(other) == without_instance(absent), method
        assert set(other.headers.keys()) == set(absent.headers.keys())
    still = client.get(f"/api/v1/items/{theirs}", headers=user).json
    assert still["name"] == "z-admin item" and still["owner_id"] == accounts["admin"]  # type: ignore[index]


def test_admin_may_change_and_delete_anyones_item(
    app: Flask,
    client: FlaskClient,
    tokens: dict[str, dict[str, str]],
    accounts: dict[str, int],
    catalog: dict[str, list[int]],
) -> None:
    item_id = catalog["mine"][0]
    admin = tokens["admin"]
    patched = client.patch(f"/api/v1/items/{item_id}", json={"name": "Moderated"}, headers=admin)
    assert patched.status_code == 200 and patched.json["name"] == "Moderated"  # type: ignore[index]
    assert patched.json["owner_id"] == accounts["user"]  # type: ignore[index]
    assert audit_rows(app, "item.updated")[0].actor_id == accounts["admin"]
    assert client.delete(f"/api/v1/items/{item_id}", headers=admin).status_code == 204


# --- users (admin) ----------------------------------------------------------------------


def test_users_list_is_admin_only(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    assert_problem(client.get("/api/v1/users", headers=tokens["user"]), 403)
    assert_problem(client.get("/api/v1/users", headers=tokens["guest"]), 403)
    assert_problem(client.get("/api/v1/users"), 401)
    body = client.get("/api/v1/users", headers=tokens["admin"]).json
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (3, 1, 25, 1)  # type: ignore[index]
    assert [u["email"] for u in body["items"]] == [  # type: ignore[index]
        "admin@example.com",
        "guest@example.com",
        "user@example.com",
    ]
    assert all("password_hash" not in u for u in body["items"])  # type: ignore[index]


def test_users_list_sorts_searches_and_filters(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    admin = tokens["admin"]

    def emails(query: str) -> list[str]:
        response = client.get(f"/api/v1/users?{query}", headers=admin)
        assert response.status_code == 200, response.json
        return [u["email"] for u in response.json["items"]]  # type: ignore[index]

    assert emails("sort=email&dir=desc")[0] == "user@example.com"
    assert emails("sort=role&dir=asc") == [
        "admin@example.com",
        "guest@example.com",
        "user@example.com",
    ]
    assert emails("q=GUEST") == ["guest@example.com"]
    assert emails("role=user") == ["user@example.com"]
    assert emails("is_active=false") == []
    assert emails("per_page=1&page=2") == ["guest@example.com"]
    for bad in ("sort=password_hash", "sort=name;DROP TABLE user_account", "role=root", "page=0"):
        parameter = bad.split("=")[0]
        body = assert_problem(client.get(f"/api/v1/users?{bad}", headers=admin), 400)
        assert parameter in body["errors"], bad
