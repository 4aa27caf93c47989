"""Hostile requests against the JSON API: odd bodies, odd headers, odd methods.

Every answer under /api/v1 must be problem JSON (never HTML, never a 500), and
the API must authenticate by bearer token only. Known failures live in
test_known_gaps.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import db
from app.models import User
from tests.conftest import login, make_settings
from tests.factories import PASSWORD, make_user

PROBLEM = "application/problem+json"


def _token(client: FlaskClient, email: str = "user@example.com") -> str:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.get_data(as_text=True)
    value: str = response.json["access_token"]  # type: ignore[index]
    return value


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_problem(response: Any, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status, (path, response.status_code, response.data[:300])
    assert response.mimetype == PROBLEM, (path, response.mimetype)
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["instance"] == path
    assert {"type", "title", "detail", "code"} <= body.keys()
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def _user_row(app: Flask, user_id: int) -> tuple[str, str, bool, int]:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return user.email, user.role, user.is_active, user.auth_epoch


# --- login bodies ---------------------------------------------------------------------


LOGIN_BODIES: list[tuple[bytes, str]] = [
    (b"null", "application/json"),
    (b"{}", "application/json"),
    (b"{", "application/json"),  # malformed
    (b"\xff\xfe{}", "application/json"),  # not UTF-8
    (b'{"email": {"$ne": null}, "password": "x"}', "application/json"),  # NoSQL-style
    (b'{"email": ["user@example.com"], "password": ["x"]}', "application/json"),
    (b'{"email": 1, "password": 2}', "application/json"),
    (b'{"email": null, "password": null}', "application/json"),
    (b'{"email": true, "password": false}', "application/json"),
    (b'{"email": NaN, "password": Infinity}', "application/json"),
    (b'{"email": ' + b"9" * 5000 + b', "password": "x"}', "application/json"),
    (b'{"email": "", "password": ""}', "application/json"),
    (b'{"email": "user@example.com"}', "application/json"),
    (b'{"email": "user@example.com", "password": "x", "role": "admin"}', "application/json"),
    (b'{"email": "\\ud800", "password": "x"}', "application/json"),  # lone surrogate
    (b"email=user@example.com&password=x", "application/x-www-form-urlencoded"),
    (b"email=user@example.com", "text/plain"),
    (b"", "application/json"),
]


def test_login_body_edge_cases_are_422_or_413_problem_json(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    for i, (body, content_type) in enumerate(LOGIN_BODIES):
        response = client.post(
            "/api/v1/auth/login",
            data=body,
            content_type=content_type,
            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"},  # below the per-IP limit
        )
        problem = _assert_problem(response, 422, "/api/v1/auth/login")
        assert problem["code"] == "validation_failed", body
        assert "access_token" not in response.get_data(as_text=True), body
    # oversized fields are refused by the schema, before any hashing
    for field, body_json in (
        ("email", {"email": "a" * 100_000 + "@example.com", "password": "x"}),
        ("password", {"email": "user@example.com", "password": "p" * 100_000}),
    ):
        response = client.post(
            "/api/v1/auth/login",
            json=body_json,
            environ_base={"REMOTE_ADDR": f"192.0.2.{len(field)}"},
        )
        assert _assert_problem(response, 422, "/api/v1/auth/login")["errors"].keys() == {field}
    # a body over the size limit is 413, still problem JSON
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post(
        "/api/v1/auth/login",
        data=b'{"email": "' + b"a" * 4096 + b'", "password": "x"}',
        content_type="application/json",
        environ_base={"REMOTE_ADDR": "192.0.2.99"},
    )
    _assert_problem(response, 413, "/api/v1/auth/login")


# --- PATCH /me bodies -----------------------------------------------------------------


PATCH_BODIES: list[bytes] = [
    b"[1]",
    b'"string"',
    b'{"name": 1}',
    b'{"name": ["x"]}',
    b'{"name": {"first": "x"}}',
    b'{"email": false}',
    b'{"email": 12345}',
    b'{"name": null}',
    b'{"email": null}',
    b'{"name": "   "}',
    b'{"name": "' + b"n" * 121 + b'"}',
    b'{"email": "not-an-email"}',
    b'{"email": "' + b"e" * 300 + b'@example.com"}',
    b'{"name": "\\ud800"}',
    b'{"role": "admin"}',
    b'{"is_active": false}',
    b'{"id": 1}',
    b'{"auth_epoch": 99}',
    b'{"password_hash": "pbkdf2_sha256$1$x$y"}',
    b'{"name": "ok", "role": "admin"}',
    b'{"name": "ok", "role": "user", "role": "admin"}',  # duplicate keys: last wins
    b'{"__class__": "x"}',
    b'{"name": "a\\u0000b"}',  # NUL: PostgreSQL text cannot hold it
    b'{"name": "a\\u001bb"}',  # other control characters
    b'{"email": "a\\u0000b@example.com"}',
]


def test_patch_me_hostile_bodies_are_422_and_change_nothing(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    token = _token(client)
    before = _user_row(app, accounts["user"])
    for body in PATCH_BODIES:
        response = client.patch(
            "/api/v1/me", data=body, content_type="application/json", headers=_bearer(token)
        )
        _assert_problem(response, 422, "/api/v1/me")
        assert _user_row(app, accounts["user"]) == before, body
    # empty or unreadable bodies are an empty patch (or a 422), never a change
    for body in (b"null", b"{}", b"", b"{", b"\xff\xfe"):
        response = client.patch(
            "/api/v1/me", data=body, content_type="application/json", headers=_bearer(token)
        )
        assert response.status_code in (200, 422), (body, response.status_code)
        if response.status_code == 422:
            assert response.mimetype == PROBLEM
        assert _user_row(app, accounts["user"]) == before, body
    # another account's email, in any case, is refused as a conflict
    for email in ("admin@example.com", "ADMIN@example.com", " Admin@Example.COM "):
        response = client.patch("/api/v1/me", json={"email": email}, headers=_bearer(token))
        assert _assert_problem(response, 409, "/api/v1/me")["errors"].keys() == {"email"}
    assert _user_row(app, accounts["user"]) == before
    # the refusal names the field, never echoes the value
    hostile = "<script>alert(1)</script>"
    response = client.patch(
        "/api/v1/me", json={"role": hostile, "name": "ok"}, headers=_bearer(token)
    )
    assert _assert_problem(response, 422, "/api/v1/me")["errors"] == {
        "role": "This field may not be set."
    }
    assert hostile not in response.get_data(as_text=True)


# --- every API error is problem JSON --------------------------------------------------


def test_401s_are_problem_json_with_a_bearer_challenge(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/api/v1/me", {}),
        ("PATCH", "/api/v1/me", {}),
        ("POST", "/api/v1/auth/logout", {}),
        ("GET", "/api/v1/me", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("GET", "/api/v1/me", {"Authorization": "Token abc"}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer"}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer    "}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer a.b"}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer " + "A" * 20_000}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer ..."}),
        ("GET", "/api/v1/me", {"Authorization": "Bearer \u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9"}),
    ]
    for method, path, headers in cases:
        response = client.open(path, method=method, headers=headers)
        _assert_problem(response, 401, path)
        assert response.headers.get("WWW-Authenticate") == "Bearer", (method, path, headers)
    # a valid token counts only in the Authorization header
    token = _token(client)
    assert client.get(f"/api/v1/me?access_token={token}").status_code == 401
    assert client.get("/api/v1/me", headers={"X-Access-Token": token}).status_code == 401
    client.set_cookie("access_token", token)
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_403_404_405_are_problem_json_with_security_headers(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    guest = _token(client, "guest@example.com")
    forbidden = client.patch("/api/v1/me", json={"name": "G"}, headers=_bearer(guest))
    _assert_problem(forbidden, 403, "/api/v1/me")
    for path in ("/api/v1/nope", "/api/v1/users/1", "/api/v2/me", "/api/v1/me/../auth/login"):
        _assert_problem(client.get(path, headers=_bearer(guest)), 404, path)
    for method, path in (
        ("DELETE", "/api/v1/me"),
        ("PUT", "/api/v1/me"),
        ("POST", "/api/v1/me"),
        ("GET", "/api/v1/auth/login"),
        ("GET", "/api/v1/auth/logout"),
        ("DELETE", "/api/v1/auth/logout"),
    ):
        response = client.open(path, method=method, headers=_bearer(guest))
        _assert_problem(response, 405, path)
        assert response.headers.get("Allow"), (method, path)
    for response in (client.get("/api/v1/me"), client.get("/api/v1/nope")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_rate_limited_api_login_is_429_problem_json(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, login_rate_limit="2 per minute")
    )
    client = app.test_client()
    body = {"email": "nobody@example.com", "password": "wrong-password"}
    statuses = [client.post("/api/v1/auth/login", json=body).status_code for _ in range(3)]
    assert statuses[:2] == [401, 401]
    limited = client.post("/api/v1/auth/login", json=body)
    _assert_problem(limited, 429, "/api/v1/auth/login")
    assert int(limited.headers["Retry-After"]) > 0
    db.dispose(app)


def test_api_login_reflects_no_secret_and_locks_out_with_429(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    # neither answer ever reflects the password or the hash
    marker = "Pa55-<script>-marker"
    bad = client.post("/api/v1/auth/login", json={"email": "user@example.com", "password": marker})
    assert bad.status_code == 401 and marker not in bad.get_data(as_text=True)
    good = client.post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    )
    text = good.get_data(as_text=True)
    assert PASSWORD not in text and "password" not in text and "auth_epoch" not in text
    # five failures lock the (account, IP) out, the right password included
    body = {"email": "user@example.com", "password": "wrong-password"}
    for _ in range(5):
        _assert_problem(client.post("/api/v1/auth/login", json=body), 401, "/api/v1/auth/login")
    locked = client.post("/api/v1/auth/login", json={**body, "password": PASSWORD})
    _assert_problem(locked, 429, "/api/v1/auth/login")
    assert int(locked.headers["Retry-After"]) > 0
    assert "access_token" not in locked.get_data(as_text=True)


# --- which credentials each side accepts ----------------------------------------------


def test_cookies_never_work_on_the_api_nor_tokens_on_pages(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    assert login(client, "user@example.com", remember="on").status_code == 303
    remember = client.get_cookie("session")  # "keep me signed in" is a lasting session
    assert remember is not None
    fresh = app.test_client()
    fresh.set_cookie("session", remember.value)
    assert fresh.get("/profile").status_code == 200  # the cookie works for pages...
    other = app.test_client()
    other.set_cookie("session", remember.value)
    _assert_problem(other.get("/api/v1/me"), 401, "/api/v1/me")  # ...but never for the API
    patched = other.patch("/api/v1/me", json={"name": "csrf-by-cookie"})
    _assert_problem(patched, 401, "/api/v1/me")
    # and the other way round: pages never accept a bearer token
    token = _token(app.test_client(), "admin@example.com")
    anonymous = app.test_client()
    for path in ("/profile", "/admin/users", "/"):
        response = anonymous.get(path, headers=_bearer(token))
        assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    posted = anonymous.post("/profile", data={"name": "Bearer"}, headers=_bearer(token))
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/login")


def test_tokens_follow_deletion_and_demotion_at_once(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    with app.app_context(), db.transaction() as session:
        victim = make_user(session, "gone@example.com")
        victim_id = victim.id
    token = _token(client, "gone@example.com")
    assert client.get("/api/v1/me", headers=_bearer(token)).status_code == 200
    with app.app_context(), db.transaction() as session:
        session.delete(session.get(User, victim_id))
    _assert_problem(client.get("/api/v1/me", headers=_bearer(token)), 401, "/api/v1/me")
    # a demotion to guest applies to live tokens at once
    token = _token(client)
    before = client.patch("/api/v1/me", json={"name": "Before"}, headers=_bearer(token))
    assert before.status_code == 200
    with app.app_context(), db.transaction() as session:
        user = session.get(User, accounts["user"])
        assert user is not None
        user.role = "guest"
    refused = client.patch("/api/v1/me", json={"name": "After"}, headers=_bearer(token))
    _assert_problem(refused, 403, "/api/v1/me")
    me = client.get("/api/v1/me", headers=_bearer(token))
    assert me.status_code == 200 and me.json["role"] == "guest"  # type: ignore[index]
    assert me.json["name"] == "Before"  # type: ignore[index]


def test_method_override_is_ignored_and_logout_is_single_use(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    token = _token(client)
    before = _user_row(app, accounts["user"])
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        response = client.post(
            "/api/v1/me?_method=PATCH",
            json={"name": "Overridden"},
            headers={**_bearer(token), header: "PATCH"},
        )
        _assert_problem(response, 405, "/api/v1/me")
    assert _user_row(app, accounts["user"]) == before
    me = client.get("/api/v1/me", headers=_bearer(token))
    assert me.json["name"] == "User"  # type: ignore[index]
    # guests may sign out; a second sign-out with the same token is a 401
    token = _token(client, "guest@example.com")
    assert client.post("/api/v1/auth/logout", headers=_bearer(token)).status_code == 204
    second = client.post("/api/v1/auth/logout", headers=_bearer(token))
    _assert_problem(second, 401, "/api/v1/auth/logout")
