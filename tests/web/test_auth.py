"""Sign-in, sign-out, registration, password reset, CSRF and abuse limits, over HTTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.core.mail import MemoryMailTransport
from app.extensions import db
from app.models import AuditLog, User
from app.repositories.users import UserRepository
from app.utils.crypto import SEED_ITERATIONS, hash_password, parse_hash
from tests.conftest import login, make_settings
from tests.factories import PASSWORD


def test_anonymous_visitor_is_sent_to_sign_in_with_next(client: FlaskClient) -> None:
    response = client.get("/profile?tab=1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/profile?tab%3D1"


def test_login_success_redirects_to_next_and_sets_a_fresh_session(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    client.get("/login")
    before = client.get_cookie("session")
    response = login(client, "USER@example.com", next="/profile")
    assert response.status_code == 303 and response.headers["Location"] == "/profile"
    after = client.get_cookie("session")
    assert after is not None and (before is None or after.value != before.value)
    assert client.get("/profile").status_code == 200


def test_session_cookie_flags_and_keep_me_signed_in(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    plain = login(client, "user@example.com")
    cookie = next(c for c in plain.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" not in cookie
    client.post("/logout")
    kept = login(client, "user@example.com", remember="on")
    cookies = kept.headers.getlist("Set-Cookie")
    lasting = next(c for c in cookies if c.startswith("session="))
    assert "Expires=" in lasting and "HttpOnly" in lasting  # outlives the browser
    assert not any(c.startswith("remember_token=") for c in cookies)  # one credential only


def test_secure_cookies_over_https(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(make_settings(tmp_path, database_url=sqlite_url, preferred_url_scheme="https"))
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    headers = app.test_client().get("/healthz").headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_wrong_password_and_unknown_user_look_the_same(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    wrong = login(client, "user@example.com", "not-the-password")
    unknown = login(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 422
    message = "The email or password is incorrect, or the account is inactive."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_inactive_account_cannot_sign_in(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    with app.app_context():
        db.session.get(User, accounts["user"]).is_active = False  # type: ignore[union-attr]
        db.session.commit()
    assert login(client, "user@example.com").status_code == 422


@pytest.mark.parametrize(
    "payload",
    [
        "https://evil.example/",
        "//evil.example/path",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/%0d%0aLocation:%20https://evil.example",
        "\t//evil.example",
        "https:evil.example",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "/\r\n/evil.example",
    ],
)
def test_open_redirect_payloads_fall_back_to_home(
    client: FlaskClient, accounts: dict[str, int], payload: str
) -> None:
    response = login(client, "user@example.com", next=payload)
    assert response.status_code == 303
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.scheme == "" and parts.netloc == ""  # stays on this site
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "\r" not in location and "\n" not in location
    if "evil.example" in location:  # only as an inert, percent-encoded path segment
        assert location.startswith("/%0d%0a")


def test_logout_is_post_only_and_ends_the_session(as_user: FlaskClient) -> None:
    assert as_user.get("/logout").status_code == 405
    response = as_user.post("/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert as_user.get("/profile").status_code == 303


def test_htmx_request_after_session_expiry_gets_hx_redirect_back(client: FlaskClient) -> None:
    response = client.get(
        "/profile/edit",
        headers={
            "HX-Request": "true",
            "HX-Request-Type": "partial",
            "HX-Target": "section#profile-card",
            "HX-Current-URL": "http://localhost/profile?x=1",
        },
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/profile?x%3D1"


def test_login_and_logout_are_audited(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    login(client, "user@example.com", "bad-password")
    login(client, "ghost@example.com", "bad-password")
    login(client, "user@example.com")
    client.post("/logout")
    with app.app_context():
        rows = db.session.scalars(
            select(AuditLog).where(AuditLog.event_type.like("user.log%")).order_by(AuditLog.id)
        ).all()
    assert [r.event_type for r in rows] == [
        "user.login_failed",
        "user.login_failed",
        "user.login",
        "user.logout",
    ]
    assert rows[0].actor_id == accounts["user"] and rows[0].ip == "127.0.0.1"
    assert rows[1].actor_id is None and rows[1].actor_email == "ghost@example.com"
    assert rows[2].created_at is not None


def test_old_hash_is_upgraded_at_next_login(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, password_hash_iterations=150_000)
    )
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), db.transaction():
        db.session.add(
            User(
                email="old@example.com",
                name="Old",
                role="user",
                password_hash=hash_password(PASSWORD, iterations=SEED_ITERATIONS),
            )
        )
    assert login(app.test_client(), "old@example.com").status_code == 303
    with app.app_context():
        upgraded = UserRepository(db.session).by_email("old@example.com").password_hash  # type: ignore[union-attr]
    parsed = parse_hash(upgraded or "")
    assert parsed is not None and parsed[0] == 150_000


# --- registration -------------------------------------------------------------------


def test_registration_creates_a_user_and_signs_in(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/register",
        data={
            "name": "Nia",
            "email": "Nia@Example.com",
            "password": "long-enough",
            "confirm_password": "long-enough",
        },
    )
    assert response.status_code == 303
    assert client.get("/profile").status_code == 200
    with app.app_context():
        user = UserRepository(db.session).by_email("nia@example.com")
        assert user is not None and user.role == "user"


def test_registration_errors_are_422_with_field_messages(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    response = client.post(
        "/register",
        data={
            "name": "",
            "email": "user@example.com",
            "password": "short",
            "confirm_password": "short",
        },
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Use at least 8 characters." in body or "Enter your name." in body
    taken = client.post(
        "/register",
        data={
            "name": "X",
            "email": "user@example.com",
            "password": "long-enough",
            "confirm_password": "long-enough",
        },
    )
    assert taken.status_code == 422 and "already uses this email" in taken.get_data(as_text=True)


def test_registration_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(make_settings(tmp_path, database_url=sqlite_url, registration_enabled=False))
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.get("/register").status_code == 404
    assert client.post("/register", data={"email": "a@example.com"}).status_code == 404
    assert "Create account" not in client.get("/login").get_data(as_text=True)


# --- forgot / reset -------------------------------------------------------------------


@pytest.fixture
def outbox(app: Flask) -> MemoryMailTransport:
    transport = MemoryMailTransport()
    app.extensions["mail"] = transport
    return transport


def _reset_link(outbox: MemoryMailTransport) -> str:
    match = re.search(r"http://localhost(/reset/\S+)", outbox.outbox[-1].text)
    assert match is not None
    return match.group(1)


def test_forgot_password_is_enumeration_safe(
    client: FlaskClient, accounts: dict[str, int], outbox: MemoryMailTransport
) -> None:
    known = client.post("/forgot", data={"email": "user@example.com"})
    unknown = client.post("/forgot", data={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200

    def without_email(response: Any) -> str:
        text: str = response.get_data(as_text=True)
        text = re.sub(r'name="csrf_token" value="[^"]+"', "", text)  # tokens are time-stamped
        text = re.sub(r"X-CSRFToken&#34;: &#34;[^&]+", "", text)
        return text.replace("user@example.com", "X").replace("nobody@example.com", "X")

    assert without_email(known) == without_email(unknown)
    assert [m.to for m in outbox.outbox] == ["user@example.com"]
    assert outbox.outbox[0].subject == "Reset your Ledgerly password"


def test_reset_link_works_once_and_ends_other_sessions(
    app: Flask, client: FlaskClient, accounts: dict[str, int], outbox: MemoryMailTransport
) -> None:
    other = app.test_client()
    assert login(other, "user@example.com").status_code == 303
    client.post("/forgot", data={"email": "user@example.com"})
    link = _reset_link(outbox)
    assert client.get(link).status_code == 200
    mismatch = client.post(
        link, data={"new_password": "brand-new-pass", "confirm_password": "other"}
    )
    assert mismatch.status_code == 422
    done = client.post(
        link, data={"new_password": "brand-new-pass", "confirm_password": "brand-new-pass"}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    again = client.post(
        link, data={"new_password": "another-pass", "confirm_password": "another-pass"}
    )
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert login(client, "user@example.com", "brand-new-pass").status_code == 303
    assert other.get("/profile").status_code == 303  # the other browser was signed out


def test_tampered_or_expired_reset_links_are_refused(
    app: Flask,
    client: FlaskClient,
    accounts: dict[str, int],
    outbox: MemoryMailTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.post("/forgot", data={"email": "user@example.com"})
    link = _reset_link(outbox)
    assert client.get(link[:-3] + "abc").status_code == 400
    import app.services.accounts as accounts_module

    monkeypatch.setattr(accounts_module, "RESET_TOKEN_MAX_AGE", -1)
    expired = client.get(link)
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)


# --- CSRF ---------------------------------------------------------------------------


def test_csrf_is_required_on_state_changes(app: Flask, accounts: dict[str, int]) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    missing = client.post("/login", data={"email": "user@example.com", "password": PASSWORD})
    assert missing.status_code == 400
    assert "security token" in missing.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    wrong = client.post(
        "/login",
        data={"email": "user@example.com", "password": PASSWORD},
        headers={"X-CSRFToken": token[:-4] + "AAAA"},
    )
    assert wrong.status_code == 400
    ok = client.post(
        "/login",
        data={"email": "user@example.com", "password": PASSWORD},
        headers={"X-CSRFToken": token},
    )
    assert ok.status_code == 303
    stale = client.post("/logout", data={"csrf_token": token})
    assert stale.status_code == 400  # signing in started a new session with a new token
    fresh = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/profile").get_data(as_text=True)
    )
    assert client.post("/logout", data={"csrf_token": fresh.group(1)}).status_code == 303  # type: ignore[union-attr]


def test_csrf_token_is_signed_once_per_session_and_still_validates(
    app: Flask, accounts: dict[str, int]
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    pattern = r'name="csrf_token" value="([^"]+)"'
    first = re.search(pattern, client.get("/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    again = re.search(pattern, client.get("/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert first == again  # kept in the session, not signed again per page
    other = app.test_client().get("/login").get_data(as_text=True)
    assert first not in other  # another session has its own
    signed_in = client.post(
        "/login", data={"email": "user@example.com", "password": PASSWORD, "csrf_token": first}
    )
    assert signed_in.status_code == 303


def test_body_carries_the_csrf_header_for_htmx(app: Flask, as_user: FlaskClient) -> None:
    html = as_user.get("/profile").get_data(as_text=True)
    assert re.search(
        r"<body hx-headers:inherited='\{&#34;X-CSRFToken&#34;: &#34;[^&]+&#34;\}'>", html
    ) or re.search(r"<body hx-headers:inherited='\{\"X-CSRFToken\": \"[^\"]+\"\}'>", html)


# --- abuse limits ---------------------------------------------------------------------


def test_repeated_failures_lock_the_account_from_that_ip_with_retry_after(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    for _ in range(5):
        assert login(client, "user@example.com", "wrong-password").status_code == 422
    locked = login(client, "user@example.com")  # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in locked.get_data(as_text=True)
    other_ip = client.post(
        "/login",
        data={"email": "user@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other_ip.status_code == 303  # the victim elsewhere is not locked out


def test_rate_limit_per_ip_answers_429_with_retry_after(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, login_rate_limit="3 per minute")
    )
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    statuses = [
        client.post(
            "/login", data={"email": f"x{i}@example.com", "password": "nope-nope"}
        ).status_code
        for i in range(5)
    ]
    assert statuses[:3] == [422, 422, 422] and statuses[3] == 429
    limited = client.post("/login", data={"email": "y@example.com", "password": "nope-nope"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many requests" in limited.get_data(as_text=True)
    assert limited.headers["X-RateLimit-Limit"] == "3"  # writes tell the client their limit
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    page = client.get("/login")  # reads are never limited, and say nothing of limits
    assert page.status_code == 200 and "X-RateLimit-Limit" not in page.headers


def test_client_ip_comes_from_the_trusted_proxy_only(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    for proxies, expected in ((0, "127.0.0.1"), (1, "203.0.113.50")):
        app = create_app(
            make_settings(tmp_path / str(proxies), database_url=sqlite_url, trusted_proxies=proxies)
        )
        app.config["WTF_CSRF_ENABLED"] = False
        app.test_client().post(
            "/login",
            data={"email": "nobody@example.com", "password": "x" * 10},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
        with app.app_context():
            row = db.session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
            assert row is not None and row.ip == expected
