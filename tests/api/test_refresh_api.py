"""Refresh tokens for the React client: the cookie, rotation, two tabs at once, reuse
(audited), expiry and sign-out."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.api import auth
from app.api.auth import REFRESH_COOKIE, REFRESH_PATH
from app.extensions import db
from app.models import AuditLog
from app.services import accounts as account_service
from app.services import users as user_service
from tests.api.test_auth_api import SECRET, api_login, bearer
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_role_accounts

REFRESH = "/api/v1/auth/refresh"


def cookie_of(client: FlaskClient) -> str | None:
    found = client.get_cookie(REFRESH_COOKIE, path=REFRESH_PATH)
    return found.value if found is not None else None


def set_cookie_header(response: Any) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(REFRESH_COOKIE)]
    assert len(headers) == 1, headers
    return str(headers[0])


def use(client: FlaskClient, value: str) -> Any:
    """Present `value` as the refresh cookie, as a browser (or a thief) holding it would."""
    client.set_cookie(REFRESH_COOKIE, value, path=REFRESH_PATH)
    return client.post(REFRESH)


def backdate_password(app: Flask, user_id: int) -> None:
    """Make the password older than the backdated sign-ins below (else they predate it)."""
    with app.app_context(), db.transaction() as session:
        user = user_service.get_user(session, user_id)
        user.password_changed_at = datetime.now(UTC) - timedelta(days=60)


def grace(app: Flask, monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Set the window in which a just-spent cookie may come back (a second tab)."""
    settings = app.extensions["settings"]
    monkeypatch.setitem(
        app.extensions, "settings", replace(settings, refresh_grace_seconds=seconds)
    )


@pytest.fixture
def no_grace(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every second use of a cookie is a reuse (the window has its own tests)."""
    grace(app, monkeypatch, 0)


@pytest.fixture
def signed_in(client: FlaskClient, accounts: dict[str, int]) -> tuple[str, str]:
    """The access token and refresh cookie of a fresh API sign-in."""
    response = api_login(client)
    assert response.status_code == 200, response.json
    refresh = cookie_of(client)
    assert refresh is not None
    return response.json["access_token"], refresh  # type: ignore[index]


def test_login_sets_an_httponly_strict_path_scoped_cookie(
    client: FlaskClient, accounts: Any
) -> None:
    header = set_cookie_header(api_login(client))
    parts = {p.strip().split("=")[0].lower(): p.strip() for p in header.split(";")}
    assert "httponly" in parts and parts["samesite"] == "SameSite=Strict"
    assert parts["path"] == f"Path={REFRESH_PATH}"
    assert "secure" not in parts  # plain http in development: a Secure cookie would never return
    expires = datetime.strptime(parts["expires"].split("=", 1)[1], "%a, %d %b %Y %H:%M:%S GMT")
    left = expires.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < left <= timedelta(days=7)
    assert "Domain" not in header  # host-only: same origin


def test_cookie_is_secure_over_https(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, database_url=sqlite_url, preferred_url_scheme="https"))
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    client = app.test_client()
    login_header = set_cookie_header(api_login(client))
    assert "Secure" in login_header and "HttpOnly" in login_header
    refreshed = client.post(REFRESH, base_url="https://localhost")
    assert refreshed.status_code == 200 and "Secure" in set_cookie_header(refreshed)
    db.dispose(app)


def test_refresh_rotates_the_cookie_and_issues_a_working_token(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    access, first = signed_in
    response = client.post(REFRESH)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["token_type"] == "Bearer" and body["user"]["email"] == "user@example.com"  # type: ignore[index]
    second = cookie_of(client)
    assert second and second != first
    assert body["access_token"] != access  # type: ignore[index]
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))  # type: ignore[index]
    assert me.status_code == 200
    third = client.post(REFRESH)
    assert third.status_code == 200 and cookie_of(client) not in (first, second)


def test_reusing_a_spent_cookie_ends_the_whole_family(
    client: FlaskClient, signed_in: tuple[str, str], no_grace: None
) -> None:
    login_access, first = signed_in
    refreshed = client.post(REFRESH)
    assert refreshed.status_code == 200
    latest, latest_access = cookie_of(client), refreshed.json["access_token"]  # type: ignore[index]
    thief = client.application.test_client()
    reused = use(thief, first)
    assert reused.status_code == 401 and reused.mimetype == "application/problem+json"
    assert "used twice" in reused.json["detail"]  # type: ignore[index]
    assert f"{REFRESH_COOKIE}=;" in set_cookie_header(reused)  # cleared
    assert use(client, latest or "").status_code == 401  # the legitimate holder is out too
    for token in (login_access, latest_access):  # and so is every access token of the sign-in
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_reuse_ends_only_its_own_family(
    client: FlaskClient, signed_in: tuple[str, str], no_grace: None
) -> None:
    _, first = signed_in
    other = client.application.test_client()
    assert api_login(other).status_code == 200  # a second sign-in (another browser)
    other_cookie = cookie_of(other)
    assert client.post(REFRESH).status_code == 200
    assert use(client.application.test_client(), first).status_code == 401
    assert use(other, other_cookie or "").status_code == 200


def test_two_tabs_refreshing_together_stay_signed_in(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    _, cookie = signed_in
    tab_a, tab_b = client, client.application.test_client()  # one browser, one cookie jar
    first, second = use(tab_a, cookie), use(tab_b, cookie)  # both reloads send the same one
    assert first.status_code == 200 and second.status_code == 200, second.json
    assert cookie_of(tab_a) == cookie_of(tab_b) != cookie  # the same successor for both
    assert first.json["access_token"] != second.json["access_token"]  # type: ignore[index]
    for answer in (first, second):
        me = client.get("/api/v1/me", headers=bearer(answer.json["access_token"]))  # type: ignore[index]
        assert me.status_code == 200
    assert tab_b.post(REFRESH).status_code == 200  # and the sign-in goes on
    assert use(tab_a, cookie_of(tab_b) or "").status_code == 200


def test_reuse_after_the_grace_window_ends_the_family_on_the_audit_log(
    app: Flask,
    client: FlaskClient,
    signed_in: tuple[str, str],
    accounts: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grace(app, monkeypatch, 1)
    access, cookie = signed_in
    assert client.post(REFRESH).status_code == 200
    latest = cookie_of(client) or ""
    time.sleep(1.2)  # the second tab's window has passed: this is someone else
    with caplog.at_level(logging.WARNING, logger="app.api.auth"):
        reused = use(app.test_client(), cookie)
        assert reused.status_code == 401 and "used twice" in reused.json["detail"]  # type: ignore[index]
        assert use(client, latest).status_code == 401  # the whole family ended, once
        assert client.get("/api/v1/me", headers=bearer(access)).status_code == 401
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "refresh token reused" in warned[0].getMessage()
    with app.app_context():
        rows = db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "user.refresh_reused")
        ).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.subject_type, row.subject_id, row.actor_id) == (
        "user",
        str(accounts["user"]),
        accounts["user"],
    )
    assert row.data["ended"] >= 3 and row.data["family"] in warned[0].getMessage()


def test_expired_cookie_is_refused(
    client: FlaskClient, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    backdate_password(client.application, accounts["user"])
    week_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7, seconds=5)
    monkeypatch.setattr(auth, "_now", lambda: week_ago)
    assert api_login(client).status_code == 200
    monkeypatch.undo()
    response = client.post(REFRESH)
    assert response.status_code == 401 and "expired" in response.json["detail"]  # type: ignore[index]


def test_a_sign_in_refreshes_no_longer_than_its_maximum_age(
    app: Flask, client: FlaskClient, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = app.extensions["settings"]
    monkeypatch.setitem(app.extensions, "settings", replace(settings, refresh_max_seconds=3600))
    backdate_password(app, accounts["user"])
    now = datetime.now(UTC).replace(microsecond=0)
    with monkeypatch.context() as clock:
        clock.setattr(auth, "_now", lambda: now - timedelta(minutes=50))
        assert api_login(client).status_code == 200
    assert client.post(REFRESH).status_code == 200  # in use: refreshes, but only until the hour
    claims = jwt.decode(cookie_of(client) or "", SECRET, algorithms=["HS256"], audience="refresh")
    assert claims["exp"] == int((now + timedelta(minutes=10)).timestamp()) == claims["fst"] + 3600
    late = app.test_client()
    with monkeypatch.context() as clock:
        clock.setattr(auth, "_now", lambda: now - timedelta(minutes=61))
        assert api_login(late).status_code == 200
    assert late.post(REFRESH).status_code == 401


def test_logout_revokes_the_access_token_and_the_refresh_family(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    access, refresh = signed_in
    response = client.post("/api/v1/auth/logout", headers=bearer(access))
    assert response.status_code == 204
    assert f"{REFRESH_COOKIE}=;" in set_cookie_header(response) and cookie_of(client) is None
    assert client.get("/api/v1/me", headers=bearer(access)).status_code == 401
    assert use(client, refresh).status_code == 401


def test_no_cookie_is_204_and_a_forged_one_401(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    access, _ = signed_in
    fresh = client.application.test_client()
    nothing = fresh.post(REFRESH)  # no cookie: no sign-in to restore, and no error either
    assert nothing.status_code == 204 and not nothing.data
    assert use(fresh, "garbage").status_code == 401
    assert use(fresh, access).status_code == 401  # an access token is no refresh token
    forged = jwt.encode({"sub": "1", "aud": "refresh"}, "wrong-key-" + "y" * 32, algorithm="HS256")
    assert use(fresh, forged).status_code == 401


def test_a_refresh_token_is_no_bearer_token(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    _, refresh = signed_in
    assert client.get("/api/v1/me", headers=bearer(refresh)).status_code == 401


def test_sign_out_everywhere_ends_refreshing(
    app: Flask, client: FlaskClient, signed_in: tuple[str, str], accounts: dict[str, int]
) -> None:
    with app.app_context(), db.transaction() as session:
        account_service.end_all_sessions(session, user_service.get_user(session, accounts["user"]))
    assert client.post(REFRESH).status_code == 401


def test_deactivated_account_cannot_refresh(
    app: Flask, client: FlaskClient, signed_in: tuple[str, str], accounts: dict[str, int]
) -> None:
    with app.app_context(), db.transaction() as session:
        user_service.get_user(session, accounts["user"]).is_active = False
    assert client.post(REFRESH).status_code == 401


def test_password_change_ends_old_tokens_and_hands_this_client_new_ones(
    client: FlaskClient, signed_in: tuple[str, str]
) -> None:
    access, old_cookie = signed_in
    url = "/api/v1/me/password"
    new = {"new_password": "a brand new passphrase", "confirm_password": "a brand new passphrase"}
    wrong = client.post(url, json={"current_password": "nope", **new}, headers=bearer(access))
    assert wrong.status_code == 422 and "current_password" in wrong.json["errors"]  # type: ignore[index]
    differ = {"current_password": PASSWORD, "new_password": "x" * 12, "confirm_password": "y" * 12}
    mismatch = client.post(url, json=differ, headers=bearer(access))
    assert mismatch.status_code == 422 and "confirm_password" in mismatch.json["errors"]  # type: ignore[index]
    response = client.post(url, json={"current_password": PASSWORD, **new}, headers=bearer(access))
    assert response.status_code == 200, response.json
    fresh, new_cookie = response.json["access_token"], cookie_of(client)  # type: ignore[index]
    assert new_cookie and new_cookie != old_cookie
    assert client.get("/api/v1/me", headers=bearer(access)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(fresh)).status_code == 200
    assert use(client.application.test_client(), old_cookie).status_code == 401
    assert use(client, new_cookie).status_code == 200


def test_guests_cannot_change_the_password(client: FlaskClient, accounts: dict[str, int]) -> None:
    token = api_login(client, "guest@example.com").json["access_token"]  # type: ignore[index]
    body = {"current_password": PASSWORD, "new_password": "n" * 16, "confirm_password": "n" * 16}
    response = client.post("/api/v1/me/password", json=body, headers=bearer(token))
    assert response.status_code == 403
