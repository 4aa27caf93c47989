"""The OpenAPI document says what the code enforces, value by value.

Each case is judged twice: by the schema the served document gives (validated
with jsonschema-rs, formats on, as schemathesis does) and by the API itself.
A value the document accepts must be accepted, and one it refuses refused;
test_openapi_schemathesis.py hunts for more such values at random.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.core.middleware import MAX_QUERY_BYTES
from tests.factories import PASSWORD


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/openapi.json").json  # type: ignore[assignment]
    return body


@pytest.fixture
def auth(client: FlaskClient, accounts: dict[str, int]) -> dict[str, str]:
    body = {"email": "user@example.com", "password": PASSWORD}
    token = client.post("/api/v1/auth/login", json=body).json["access_token"]  # type: ignore[index]
    return {"Authorization": f"Bearer {token}"}


def _accepts(document: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` is valid for `schema` (refs into the document resolved)."""
    root = {**schema, "components": document["components"]}
    return bool(jsonschema_rs.validator_for(root, validate_formats=True).is_valid(value))


def _body_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["paths"][path][method]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def _query_schema(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for parameter in document["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise LookupError(name)


def test_control_characters_in_q_are_refused_as_documented(
    client: FlaskClient, document: dict[str, Any], auth: dict[str, str]
) -> None:
    schema = _query_schema(document, "/items", "q")
    for q in ("item", "café ☕", "a\x00b", "\x1f", "a\tb", "a\nb", "a\x7fb", "\x85 nel", "x" * 101):
        documented = _accepts(document, schema, q)
        response = client.get("/api/v1/items", query_string={"q": q}, headers=auth)
        assert response.status_code == (200 if documented else 400), (repr(q), documented)


@pytest.mark.parametrize(
    "price",
    [
        *("12.50", " 12.5 ", "0012.5", "0", "9999999999.99"),  # text the document allows
        *("1e2", "١٢", "1_000", "+1", "-0", "-0.00", ".5", "12.", "12.500", "0x1", "12,50"),
        *(" ", "", "10000000000", "1.234", "12.50\n", "\u00a012.50"),
        *(0, 0.07, 12.5, -0.0, 9999999999.99),  # numbers the document allows
        *(12.345, 0.5700000000000001, -1, 1e10, 1e400),
    ],
)
def test_prices_the_document_allows_are_the_prices_the_api_accepts(
    client: FlaskClient, document: dict[str, Any], auth: dict[str, str], price: Any
) -> None:
    schema = _body_schema(document, "/items", "post")
    body = {"name": "priced", "price": price}
    documented = _accepts(document, schema, body) if price != 1e400 else False
    response = client.post("/api/v1/items", json=body, headers=auth)
    assert response.status_code == (201 if documented else 422), (price, response.json)


def test_patch_me_email_is_documented_as_the_api_checks_it(
    client: FlaskClient, document: dict[str, Any], auth: dict[str, str]
) -> None:
    schema = _body_schema(document, "/me", "patch")
    email = document["components"]["schemas"]["ProfilePatch"]["properties"]["email"]
    assert email["format"] == "email"
    for value in ("0", "user", "a@b.test", "a@x.LOCALHOST", "a\x00@example.com", "a@b.invalid"):
        body = {"email": value, "current_password": PASSWORD}
        assert not _accepts(document, schema, body), value
        response = client.patch("/api/v1/me", json=body, headers=auth)
        assert response.status_code == 422 and "email" in response.json["errors"], value  # type: ignore[index]
    body = {"email": "new.address@example.org", "current_password": PASSWORD}
    assert _accepts(document, schema, body)
    changed = client.patch("/api/v1/me", json=body, headers=auth)
    assert changed.status_code == 200 and changed.json["email"] == "new.address@example.org"  # type: ignore[index]


def test_nul_in_the_login_email_is_refused_as_documented(
    client: FlaskClient, document: dict[str, Any], accounts: dict[str, int]
) -> None:
    schema = _body_schema(document, "/auth/login", "post")
    body = {"email": "user@example.com\x00", "password": PASSWORD}
    assert not _accepts(document, schema, body)
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json["errors"] == {"email": "Remove the control characters."}  # type: ignore[index]


def test_patch_me_needs_a_body_as_documented(
    client: FlaskClient, document: dict[str, Any], auth: dict[str, str]
) -> None:
    assert document["paths"]["/me"]["patch"]["requestBody"]["required"] is True
    for extra in (
        {},
        {"content_type": "application/json"},
        {"data": "", "content_type": "text/plain"},
    ):
        response = client.patch("/api/v1/me", headers=auth, **extra)
        assert response.status_code == 422, extra
        assert response.json["errors"] == {"body": "Send a JSON object."}  # type: ignore[index]


def test_oversized_query_strings_are_a_documented_414(
    app: Flask, client: FlaskClient, document: dict[str, Any], auth: dict[str, str]
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "414" in operation["responses"], (method, path)
            assert "application/problem+json" in operation["responses"]["414"]["content"]
    at_limit = "q=" + "x" * (MAX_QUERY_BYTES - 2)
    assert client.get(f"/api/v1/items?{at_limit}", headers=auth).status_code == 400  # q > 100
    for query in (at_limit + "x", "q=" + "%F0%9F%92%A5" * 400):
        response = client.get(f"/api/v1/items?{query}", headers=auth)
        assert response.status_code == 414 and response.mimetype == "application/problem+json"
        assert response.json["status"] == 414  # type: ignore[index]
        # pages answer the same, as a page
        page = client.get(f"/login?{query}")
        assert page.status_code == 414 and "too long" in page.get_data(as_text=True)
