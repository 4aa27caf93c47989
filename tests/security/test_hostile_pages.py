"""Hostile requests against the HTMX pages: injection, redirects, framing, state changes.

Known failures live in test_known_gaps.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.core.mail import MemoryMailTransport
from app.extensions import db
from app.models import AuditLog, User
from app.services.users import create_user
from tests.conftest import login
from tests.factories import FAST_ITERATIONS, PASSWORD

XSS = "<script>alert(1)</script>"
ATTR_BREAK = "\"'><img src=x onerror=alert(1)>"
HTMX_PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial"}


def _text(response: Any) -> str:
    text: str = response.get_data(as_text=True)
    return text


def _assert_escaped(html: str, raw: str) -> None:
    assert raw not in html, f"{raw!r} is rendered unescaped"
    assert "<img src=x" not in html and "<script>alert" not in html


def _users_snapshot(app: Flask) -> list[tuple[Any, ...]]:
    with app.app_context():
        rows = db.session.scalars(select(User).order_by(User.id)).all()
        return [
            (u.id, u.email, u.name, u.role, u.is_active, u.auth_epoch, u.password_hash)
            for u in rows
        ]


def _audit_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditLog)) or 0)


def _concrete(rule: str, value: int) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", str(value), rule)


# --- stored and reflected XSS ---------------------------------------------------------


def test_hostile_names_are_escaped_everywhere_they_are_shown(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    hostile = f"{XSS}{ATTR_BREAK}"
    with app.app_context(), db.transaction() as session:
        create_user(
            session,
            email="o'hara&co@example.com",  # ' and & are legal in the local part
            name=hostile,
            password=PASSWORD,
            iterations=FAST_ITERATIONS,
        )
    # the welcome flash, the nav and the profile card of the hostile user
    assert login(client, "o'hara&co@example.com").status_code == 303
    for path in ("/", "/profile"):
        _assert_escaped(_text(client.get(path)), hostile)
    edit = client.get("/profile/edit", headers={**HTMX_PARTIAL, "HX-Target": "profile-card"})
    _assert_escaped(_text(edit), hostile)
    saved = client.post(
        "/profile",
        data={"name": hostile, "email": "o'hara&co@example.com"},
        headers={**HTMX_PARTIAL, "HX-Target": "profile-card"},
    )
    assert saved.status_code == 200
    _assert_escaped(_text(saved), hostile)
    client.post("/logout")
    # the admin's users table, its row fragment and its flash
    login(client, "admin@example.com")
    table = _text(client.get("/admin/users"))
    _assert_escaped(table, hostile)
    assert "o'hara&co@example.com" not in table and "o&#39;hara&amp;co@example.com" in table
    with app.app_context():
        target = db.session.scalar(select(User).where(User.email == "o'hara&co@example.com"))
        assert target is not None
        target_id = target.id
    row = client.post(
        f"/admin/users/{target_id}",
        data={"role": "guest"},
        headers={**HTMX_PARTIAL, "HX-Target": f"user-{target_id}"},
    )
    assert row.status_code == 200
    _assert_escaped(_text(row), hostile)
    assert "o'hara&co" not in _text(row)
    client.post(f"/admin/users/{target_id}", data={"role": "user"})  # plain post: flash
    assert "o'hara&co" not in _text(client.get("/admin/users"))


def test_reflected_input_is_escaped_on_every_form(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    payload = f"{XSS}{ATTR_BREAK}"
    failed_login = client.post("/login", data={"email": payload, "password": "x" * 8})
    assert failed_login.status_code == 422
    _assert_escaped(_text(failed_login), payload)
    register = client.post(
        "/register",
        data={"name": payload, "email": payload, "password": "x", "confirm_password": "y"},
    )
    assert register.status_code == 422
    _assert_escaped(_text(register), payload)
    forgot = client.post("/forgot", data={"email": payload})
    assert forgot.status_code == 200
    _assert_escaped(_text(forgot), payload)
    reset = client.get("/reset/" + '"><script>alert(1)<')
    assert reset.status_code == 400
    _assert_escaped(_text(reset), '"><script>')
    login_page = client.get("/login", query_string={"next": f"/{payload}"})
    _assert_escaped(_text(login_page), payload)
    login(client, "user@example.com")
    profile = client.post("/profile", data={"name": payload, "email": payload})
    assert profile.status_code == 422
    _assert_escaped(_text(profile), payload)
    client.post("/logout")
    for headers in ({}, HTMX_PARTIAL):
        response = client.get(f"/nope/{XSS}", headers=headers)
        assert response.status_code == 404
        _assert_escaped(_text(response), XSS)
    login(client, "admin@example.com")
    for headers in ({}, {**HTMX_PARTIAL, "HX-Target": "users-table"}):
        response = client.get("/admin/users", query_string={"q": payload}, headers=headers)
        assert response.status_code == 200
        _assert_escaped(_text(response), payload)


# --- redirects and header injection ---------------------------------------------------

NEXT_PAYLOADS = [
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/.//evil.example",
    "/%2e%2e//evil.example",
    "/\u3002evil.example",
    "\uff0f\uff0fevil.example",  # full-width solidus
    "\x0b//evil.example",
    "\x1f//evil.example",
    " //evil.example",
    "/\x00/evil.example",
    "/ /evil.example",
    "//evil.example%2F..",
    "https://localhost@evil.example/",
    "/@evil.example",
    "//localhost@evil.example",
    "/login?next=//evil.example",
]


def _browser_target(location: str, base: str = "http://localhost/login") -> str:
    """Roughly what a browser does with Location: drop tab/newline, `\\` is `/`."""
    cleaned = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    return urljoin(base, cleaned)


def test_next_payloads_never_leave_the_site_on_any_path(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    locations = []
    # the form (POST) path
    for i, payload in enumerate(NEXT_PAYLOADS):
        response = client.post(
            "/login",
            data={"email": "user@example.com", "password": PASSWORD, "next": payload},
            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"},
        )
        assert response.status_code == 303, (payload, response.status_code)
        locations.append(response.headers["Location"])
        client.post("/logout")
    # the already-signed-in (GET) path
    login(client, "user@example.com")
    for payload in NEXT_PAYLOADS:
        response = client.get("/login", query_string={"next": payload})
        assert response.status_code == 303, payload
        locations.append(response.headers["Location"])
    for location in locations:
        assert urlsplit(_browser_target(location)).netloc == "localhost", location
        assert not re.search(r"[\x00-\x1f]", location), location


def test_htmx_redirect_ignores_a_hostile_current_url(client: FlaskClient) -> None:
    for current in (
        "https://evil.example/x",
        "https://evil.example//evil.example/x",
        "http://localhost/%0d%0aSet-Cookie:%20pwned=1",
        "javascript:alert(1)",
        "not a url at all",
    ):
        response = client.get(
            "/profile/edit",
            headers={**HTMX_PARTIAL, "HX-Target": "profile-card", "HX-Current-URL": current},
        )
        assert response.status_code == 401
        target = response.headers["HX-Redirect"]
        assert target.startswith("/login"), target
        assert urlsplit(_browser_target(target)).netloc == "localhost"
        assert "\r" not in target and "\n" not in target
        assert not any("pwned" in c for c in response.headers.getlist("Set-Cookie"))
        # and the next= it carries is itself refused if it points off-site
        follow = client.get(target)
        assert 'name="next" value="/' in _text(follow)
        assert "evil.example" not in re.search(r'name="next" value="([^"]*)"', _text(follow))[1]  # type: ignore[index]


def test_redirects_are_relative_whatever_the_host_header(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    assert client.get("/profile", headers=headers).headers["Location"].startswith("/login")
    response = client.post(
        "/login",
        data={"email": "user@example.com", "password": PASSWORD, "next": "/profile"},
        headers=headers,
    )
    assert response.headers["Location"] == "/profile"
    assert client.post("/logout", headers=headers).headers["Location"] == "/login"
    # X-Forwarded-* from a client never reach an emailed link either
    outbox = MemoryMailTransport()
    app.extensions["mail"] = outbox
    client.post(
        "/forgot",
        data={"email": "user@example.com"},
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "javascript"},
    )
    assert "evil.example" not in outbox.outbox[-1].text
    assert "http://localhost/reset/" in outbox.outbox[-1].text


# --- framing and content sniffing -----------------------------------------------------


def test_every_kind_of_response_forbids_framing(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    responses = {
        "login page": client.get("/login"),
        "redirect": client.get("/profile"),
        "htmx 401": client.get("/profile", headers=HTMX_PARTIAL),
        "404": client.get("/missing"),
        "405": client.get("/logout"),
        "422 form": client.post("/login", data={"email": "x", "password": "y"}),
        "api": client.get("/api/v1/me"),
    }
    login(client, "admin@example.com")
    responses["profile"] = client.get("/profile")
    responses["fragment"] = client.get(
        "/profile/edit", headers={**HTMX_PARTIAL, "HX-Target": "profile-card"}
    )
    responses["admin"] = client.get("/admin/users")
    # the pages need no inline script that CSP would have to allow
    for path in ("/", "/profile", "/admin/users"):
        html = _text(client.get(path))
        assert "Sign out" in html, path  # really the signed-in page
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
    responses["htmx redirect"] = client.post("/logout", headers=HTMX_PARTIAL)
    for name, response in responses.items():
        headers = response.headers
        assert headers.get("X-Frame-Options") == "DENY", name
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert "script-src 'self'" in headers["Content-Security-Policy"], name
        assert "unsafe-inline" not in headers["Content-Security-Policy"], name


# --- state changes --------------------------------------------------------------------


def test_no_get_or_head_changes_state(app: Flask, as_admin: FlaskClient) -> None:
    users_before, audit_before = _users_snapshot(app), _audit_count(app)
    admin_id = users_before[0][0]
    target_id = users_before[1][0]
    visited = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.endpoint == "static":
            continue
        values = (target_id, admin_id) if rule.arguments else (0,)
        for value in values:
            path = _concrete(rule.rule, value)
            response = as_admin.get(path)
            assert response.status_code < 500, (path, response.status_code)
            visited.append(path)
    for path in ("/", "/profile", "/admin/users", "/login"):  # HEAD runs the same views
        assert as_admin.head(path).status_code < 500, path
    assert len(visited) >= 8, visited
    assert _users_snapshot(app) == users_before
    assert _audit_count(app) == audit_before
    assert as_admin.get("/admin/users").status_code == 200  # still signed in


def test_method_override_tricks_do_not_change_the_action(
    app: Flask, as_admin: FlaskClient, accounts: dict[str, int]
) -> None:
    before = _users_snapshot(app)
    user_id = accounts["user"]
    override = {"X-HTTP-Method-Override": "POST", "X-HTTP-Method": "POST"}
    assert as_admin.get("/logout", headers=override).status_code == 405
    assert as_admin.get(f"/admin/users/{user_id}/delete", headers=override).status_code == 405
    assert as_admin.get(f"/admin/users/{user_id}?role=guest&_method=POST").status_code == 405
    # a POST that claims to be a DELETE of the account is just an (empty) update
    response = as_admin.post(
        f"/admin/users/{user_id}",
        data={"_method": "DELETE"},
        headers={"X-HTTP-Method-Override": "DELETE"},
    )
    assert response.status_code == 303
    assert _users_snapshot(app) == before
    assert as_admin.get("/profile").status_code == 200


def test_registration_ignores_fields_a_visitor_may_not_set(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    response = client.post(
        "/register",
        data={
            "name": "Mallory",
            "email": "mallory@example.com",
            "password": "long-enough-pass",
            "confirm_password": "long-enough-pass",
            "role": "admin",
            "is_active": "1",
            "id": str(accounts["admin"]),
            "auth_epoch": "7",
            "password_hash": "pbkdf2_sha256$1$x$y",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "mallory@example.com"))
        assert user is not None
        assert (user.role, user.auth_epoch) == ("user", 0)
        assert user.id not in accounts.values()
        assert user.password_hash and user.password_hash.startswith("pbkdf2_sha256$")
        assert user.password_hash != "pbkdf2_sha256$1$x$y"
    assert client.get("/admin/users").status_code == 403


def test_users_cannot_reach_admin_actions_and_missing_targets_are_404(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    before = _users_snapshot(app)
    login(client, "user@example.com")
    for path, data in (
        (f"/admin/users/{accounts['admin']}", {"role": "guest"}),
        (f"/admin/users/{accounts['user']}", {"role": "admin"}),  # self-promotion
        (f"/admin/users/{accounts['guest']}/delete", {}),
    ):
        assert client.post(path, data=data).status_code == 403, path
    assert _users_snapshot(app) == before
    client.post("/logout")
    login(client, "admin@example.com")
    assert client.post("/admin/users/999999", data={"role": "guest"}).status_code == 404
    assert client.post("/admin/users/999999/delete").status_code == 404
    assert client.post("/admin/users/-1", data={"role": "guest"}).status_code == 404
    # nor can an admin set a role that does not exist
    for role in ("superuser", "ADMIN", "admin ", "", "admin\x00"):
        response = client.post(f"/admin/users/{accounts['user']}", data={"role": role})
        assert response.status_code == 303, role  # plain post: flash + back to the list
    assert _users_snapshot(app) == before


# --- audit trail ----------------------------------------------------------------------


def test_account_events_are_audited_with_ip_and_time(app: Flask, client: FlaskClient) -> None:
    ip = {"REMOTE_ADDR": "203.0.113.9"}
    client.post(
        "/register",
        data={
            "name": "Ann",
            "email": "ann@example.com",
            "password": "long-enough-pass",
            "confirm_password": "long-enough-pass",
        },
        environ_base=ip,
    )
    client.post("/profile", data={"name": "Ann B"}, environ_base=ip)
    client.post(
        "/profile/password",
        data={
            "current_password": "long-enough-pass",
            "new_password": "another-long-pass",
            "confirm_password": "another-long-pass",
        },
        environ_base=ip,
    )
    client.post("/logout", environ_base=ip)
    client.post("/login", data={"email": "ann@example.com", "password": "wrong"}, environ_base=ip)
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        ann = db.session.scalar(select(User).where(User.email == "ann@example.com"))
        assert ann is not None
    kinds = [r.event_type for r in rows]
    for kind in ("user.created", "user.updated", "user.logout", "user.login_failed"):
        assert kind in kinds, kinds
    for row in rows:
        assert row.ip == "203.0.113.9", row.event_type
        assert row.created_at is not None
        assert row.subject_id == str(ann.id)
        if row.event_type != "user.created":  # self-registration has no signed-in actor
            assert row.actor_id == ann.id, row.event_type
    for secret in ("long-enough-pass", "another-long-pass", "wrong"):
        assert not any(secret in str(r.data) for r in rows), secret
    # a hostile email on a failed sign-in is stored truncated, the password never
    hostile = ("x" * 500) + XSS + "@example.com"
    response = client.post(
        "/login",
        data={"email": hostile, "password": "wrong-password"},
        environ_base={"REMOTE_ADDR": "198.51.100.1"},
    )
    assert response.status_code == 422
    with app.app_context():
        row = db.session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert row is not None and row.event_type == "user.login_failed"
    assert row.actor_email is not None and len(row.actor_email) <= 254
    assert "wrong-password" not in str(row.data)
