"""CSRF on every state change, session fixation, and stolen cookies after sign-out.

Known failures live in test_known_gaps.py.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import User
from tests.conftest import login, make_settings, require
from tests.factories import PASSWORD, make_user

SAFE = {"GET", "HEAD", "OPTIONS"}


def _csrf(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, path
    return match.group(1)


def _concrete(rule: str, value: int) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", str(value), rule)


def _snapshot(app: Flask) -> list[tuple[Any, ...]]:
    with app.app_context():
        users = db.session.scalars(select(User).order_by(User.id)).all()
        return [(u.id, u.email, u.name, u.role, u.is_active, u.auth_epoch) for u in users]


# --- CSRF -----------------------------------------------------------------------------


def test_every_state_changing_page_route_needs_a_valid_csrf_token(
    app: Flask, accounts: dict[str, int]
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    # signed out, every state change needs a token too
    client = app.test_client()
    for path, data in (
        ("/login", {"email": "user@example.com", "password": PASSWORD}),
        ("/register", {"email": "n@example.com", "name": "N", "password": "p" * 10}),
        ("/forgot", {"email": "user@example.com"}),
        ("/reset/abc", {"new_password": "p" * 10, "confirm_password": "p" * 10}),
    ):
        assert client.post(path, data=data).status_code == 400, path
    # signing out without a session is sent to sign in (authentication runs before CSRF)
    assert client.post("/logout").status_code == 303
    assert client.get("/profile").status_code == 303  # the login did not happen
    # signed in as an admin, on every route
    admin, other = app.test_client(), app.test_client()
    foreign_token = _csrf(other)  # a valid token, but of someone else's session
    token = _csrf(admin)
    signed_in = admin.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 303
    token = _csrf(admin, "/profile")
    before = _snapshot(app)
    tried = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) - SAFE):
            path = _concrete(rule.rule, accounts["user"])
            data = {"name": "csrf", "email": "csrf@example.com", "role": "guest", "is_active": "0"}
            attempts: list[dict[str, Any]] = [
                {"data": data},
                {"data": {**data, "csrf_token": token[:-4] + "AAAA"}},
                {"data": data, "headers": {"X-CSRFToken": foreign_token}},
            ]
            if rule.rule == "/profile":  # every other way of smuggling a token, once
                attempts += [
                    {"data": {**data, "csrf_token": ""}},
                    {"data": {**data, "csrf_token": foreign_token}},
                    {"data": data, "headers": {"X-CSRF-Token": token}},  # not the configured one
                    {"data": data, "query_string": {"csrf_token": token}},  # not from the URL
                    {"json": {**data, "csrf_token": token}},  # nor from a JSON body
                    {"data": data, "headers": {"HX-Request": "true", "Referer": "http://x/"}},
                ]
            for kwargs in attempts:
                response = admin.open(path, method=method, **kwargs)
                assert response.status_code == 400, (method, path, kwargs, response.status_code)
            tried.append((method, rule.rule))
    assert len(tried) >= 9, tried
    assert _snapshot(app) == before
    assert admin.get("/admin/users").status_code == 200  # neither sign-out went through
    # the real token, as htmx sends it, is accepted
    ok = admin.post(
        "/profile",
        data={"name": "Admin Two"},
        headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Target": "profile-card"},
    )
    assert ok.status_code == 200


def test_the_api_needs_no_csrf_token_because_it_ignores_cookies(
    app: Flask, accounts: dict[str, int]
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    bearer = {"Authorization": f"Bearer {response.json['access_token']}"}  # type: ignore[index]
    assert client.patch("/api/v1/me", json={"name": "No CSRF"}, headers=bearer).status_code == 200
    login_page = app.test_client()
    token = _csrf(login_page)
    login_page.post(
        "/login", data={"email": "user@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert login_page.patch("/api/v1/me", json={"name": "By cookie"}).status_code == 401


# --- cookies, cookie mode -------------------------------------------------------------


def test_forged_or_planted_cookies_are_anonymous(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    login(client, "user@example.com", remember="on")
    session_cookie = client.get_cookie("session")
    assert session_cookie is not None and client.get_cookie("remember_token") is None
    admin_id = accounts["admin"]
    forged_remember = f"{admin_id}:0|" + "f" * 128  # Flask-Login's format, unsigned
    for name, value in (
        ("session", session_cookie.value[:-4] + "AAAA"),
        ("session", "e30.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA"),  # {} with a bogus signature
        ("remember_token", forged_remember),
        ("remember_token", f"{admin_id}:0|" + "0" * 128),
        ("remember_token", f"{admin_id}:0"),
    ):
        attacker = app.test_client()
        attacker.set_cookie(name, value)
        assert attacker.get("/profile").status_code == 303, (name, value)
        assert attacker.get("/admin/users").status_code == 303, (name, value)
    # a cookie planted before sign-in is worth nothing after it
    attacker = app.test_client()
    attacker.get("/login")
    planted = attacker.get_cookie("session")
    assert planted is not None
    victim = app.test_client()
    victim.set_cookie("session", planted.value)
    assert login(victim, "user@example.com").status_code == 303
    assert victim.get_cookie("session").value != planted.value  # type: ignore[union-attr]
    assert attacker.get("/profile").status_code == 303


def test_stolen_remember_cookie_dies_with_everywhere_password_and_deactivation(
    app: Flask, accounts: dict[str, int]
) -> None:
    def steal(password: str = PASSWORD) -> tuple[FlaskClient, str]:
        owner = app.test_client()
        assert login(owner, "user@example.com", password, remember="on").status_code == 303
        return owner, owner.get_cookie("session").value  # type: ignore[union-attr]

    def works(remember: str) -> bool:
        thief = app.test_client()
        thief.set_cookie("session", remember)
        return thief.get("/profile").status_code == 200

    # sign out everywhere...
    owner, stolen = steal()
    assert works(stolen)
    assert owner.post("/profile/sessions/end").status_code == 303
    assert not works(stolen)
    # ...a password change (the changing browser carries on)...
    owner, stolen = steal()
    changed = owner.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a-brand-new-pass",
            "confirm_password": "a-brand-new-pass",
        },
    )
    assert changed.status_code == 200
    assert not works(stolen)
    assert owner.get("/profile").status_code == 200
    # ...and an admin deactivating the account, even if it is reactivated later
    owner, stolen = steal("a-brand-new-pass")
    admin = app.test_client()
    assert login(admin, "admin@example.com").status_code == 303
    assert admin.post(f"/admin/users/{accounts['user']}", data={"is_active": "0"}).status_code
    admin.post(f"/admin/users/{accounts['user']}", data={"is_active": "1"})
    assert not works(stolen)
    assert owner.get("/profile").status_code == 303


# --- cookies, Redis mode ----------------------------------------------------------------


@dataclass
class RedisCase:
    """One app on Redis. Flask-Limiter keeps the key prefix of the first app it was
    initialised with, so every Redis-backed test app shares limiter counters: each
    case signs in from its own address, as its own account, to stay independent."""

    app: Flask
    store: redis.Redis
    prefix: str
    email: str
    ip: str

    def client(self) -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = self.ip
        return client

    def login(self, client: FlaskClient, **extra: str) -> None:
        response = login(client, self.email, **extra)
        assert response.status_code == 303, response.status_code

    def exists(self, sid: str) -> bool:
        return bool(self.store.exists(f"{self.prefix}:session:{sid}"))


@pytest.fixture
def redis_case(sqlite_url: str, tmp_path: Path) -> Iterator[RedisCase]:
    url = require("REDIS_URL")
    tag = uuid.uuid4()
    prefix = f"test-sec-{tag.hex[:8]}"
    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, redis_url=url, redis_key_prefix=prefix)
    )
    app.config["WTF_CSRF_ENABLED"] = False
    email = f"user-{tag.hex[:8]}@example.com"
    with app.app_context(), db.transaction() as session:
        make_user(session, email, name="U")
    store = redis.Redis.from_url(url)
    ip = "10.{}.{}.{}".format(*tag.bytes[:3])
    yield RedisCase(app=app, store=store, prefix=prefix, email=email, ip=ip)
    keys = list(store.scan_iter(f"{prefix}:*"))
    if keys:
        store.delete(*keys)
    db.dispose(app)


@pytest.mark.redis
def test_redis_session_fixation_is_defeated(redis_case: RedisCase) -> None:
    attacker = redis_case.client()
    attacker.get("/login")  # a real, stored anonymous session
    planted = attacker.get_cookie("session").value  # type: ignore[union-attr]
    assert redis_case.exists(planted)
    victim = redis_case.client()
    victim.set_cookie("session", planted)
    redis_case.login(victim)
    fresh = victim.get_cookie("session").value  # type: ignore[union-attr]
    assert fresh != planted
    assert not redis_case.exists(planted)  # the old id is gone server-side
    assert attacker.get("/profile").status_code == 303
    assert victim.get("/profile").status_code == 200


@pytest.mark.redis
def test_redis_never_adopts_a_session_id_the_client_chose(redis_case: RedisCase) -> None:
    prefix = redis_case.prefix
    for chosen in ("A" * 43, "../../etc/passwd", "x" * 500, "*", f"{prefix}:session:*"):
        client = redis_case.client()
        client.set_cookie("session", chosen)
        client.get("/login")
        issued = client.get_cookie("session")
        assert issued is not None and issued.value != chosen
        assert not redis_case.exists(chosen)
    client = redis_case.client()
    client.set_cookie("session", "B" * 43)
    redis_case.login(client)
    assert client.get_cookie("session").value != "B" * 43  # type: ignore[union-attr]


@pytest.mark.redis
def test_redis_sign_out_everywhere_deletes_every_stored_session(redis_case: RedisCase) -> None:
    browsers = [redis_case.client() for _ in range(3)]
    for browser in browsers:
        redis_case.login(browser, remember="on")
    sids = [b.get_cookie("session").value for b in browsers]  # type: ignore[union-attr]
    assert all(redis_case.exists(sid) for sid in sids)
    assert browsers[0].post("/profile/sessions/end").status_code == 303
    assert not any(redis_case.exists(sid) for sid in sids)
    for browser in browsers[1:]:
        assert browser.get("/profile").status_code == 303
    thief = redis_case.client()
    for sid in sids[1:]:
        thief.set_cookie("session", sid)
        assert thief.get("/profile").status_code == 303


@pytest.mark.redis
def test_redis_password_change_ends_the_other_stored_sessions(redis_case: RedisCase) -> None:
    mine, other = redis_case.client(), redis_case.client()
    redis_case.login(mine)
    redis_case.login(other)
    other_sid = other.get_cookie("session").value  # type: ignore[union-attr]
    changed = mine.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a-brand-new-pass",
            "confirm_password": "a-brand-new-pass",
        },
    )
    assert changed.status_code == 200
    assert not redis_case.exists(other_sid)
    assert other.get("/profile").status_code == 303
    assert mine.get("/profile").status_code == 200


def _eventually(check: Callable[[], bool], *, within: float = 0.5) -> bool:
    """Cross-instance invalidation travels over pub/sub: allow it a moment, no more."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@pytest.mark.redis
def test_redis_identity_cache_never_outlives_a_revocation_on_another_instance(
    redis_case: RedisCase, tmp_path: Path
) -> None:
    """Instance B caches who a session/token belongs to; A's changes must reach it at once."""
    settings = redis_case.app.extensions["settings"]
    other = create_app(make_settings(tmp_path / "b", **_shared(settings)))
    other.config["WTF_CSRF_ENABLED"] = False
    try:
        with redis_case.app.app_context(), db.transaction() as session:
            make_user(session, f"admin-{redis_case.email}", role="admin")
            user = session.scalar(select(User).where(User.email == redis_case.email))
            assert user is not None
            user_id = user.id
        on_b = other.test_client()
        on_b.environ_base["REMOTE_ADDR"] = redis_case.ip
        redis_case.login(on_b)
        token = on_b.post(
            "/api/v1/auth/login", json={"email": redis_case.email, "password": PASSWORD}
        ).json["access_token"]  # type: ignore[index]
        bearer = {"Authorization": f"Bearer {token}"}
        assert on_b.get("/profile").status_code == 200  # B now holds the identity in L1
        assert on_b.get("/api/v1/me", headers=bearer).status_code == 200
        admin_on_a = redis_case.client()
        assert login(admin_on_a, f"admin-{redis_case.email}").status_code == 303
        assert admin_on_a.post(f"/admin/users/{user_id}", data={"is_active": "0"}).status_code
        assert _eventually(lambda: on_b.get("/api/v1/me", headers=bearer).status_code == 401)
        assert _eventually(lambda: on_b.get("/profile").status_code == 303)
    finally:
        db.dispose(other)


def _shared(settings: Any) -> dict[str, Any]:
    return {
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "redis_key_prefix": settings.redis_key_prefix,
    }
