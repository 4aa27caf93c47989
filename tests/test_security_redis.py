"""With Redis: tokens, sessions and lockouts are shared by every app instance."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app.core.breaker import ServiceDown
from app.core.redis_conn import GuardedRedis, get_redis
from app.settings import get_settings
from tests.conftest import login, require
from tests.factories import PASSWORD

pytestmark = pytest.mark.redis


def test_token_revoked_on_one_instance_is_refused_by_the_other(
    redis_apps: tuple[Flask, Flask],
) -> None:
    a, b = (app.test_client() for app in redis_apps)
    token = a.post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    ).json["access_token"]  # type: ignore[index]
    auth = {"Authorization": f"Bearer {token}"}
    assert b.get("/api/v1/me", headers=auth).status_code == 200
    assert a.post("/api/v1/auth/logout", headers=auth).status_code == 204
    assert b.get("/api/v1/me", headers=auth).status_code == 401


def test_session_lives_in_redis_and_is_shared(redis_apps: tuple[Flask, Flask]) -> None:
    a, b = (app.test_client() for app in redis_apps)
    login(a, "user@example.com")
    cookie = a.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 64  # an id, not the signed data
    b.set_cookie("session", cookie.value)
    assert b.get("/profile").status_code == 200


def test_logout_then_replayed_cookie_is_refused(redis_apps: tuple[Flask, Flask]) -> None:
    a, attacker = redis_apps[0].test_client(), redis_apps[1].test_client()
    login(a, "user@example.com")
    stolen = a.get_cookie("session").value  # type: ignore[union-attr]
    a.post("/logout")
    attacker.set_cookie("session", stolen)
    assert attacker.get("/profile").status_code == 303


def test_login_lockout_is_shared_between_instances(redis_apps: tuple[Flask, Flask]) -> None:
    a, b = (app.test_client() for app in redis_apps)
    for _ in range(5):
        assert login(a, "user@example.com", "wrong-password").status_code == 422
    locked = login(b, "user@example.com")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def _signed_in(app: Flask) -> tuple[FlaskClient, GuardedRedis]:
    """A client signed in as user@example.com on `app`, and the app's Redis."""
    client = app.test_client()
    login(client, "user@example.com")
    assert client.get("/profile").status_code == 200
    store = get_redis(app)
    assert store is not None
    return client, store


def test_a_session_redis_lost_says_it_expired(redis_apps: tuple[Flask, Flask]) -> None:
    app = redis_apps[0]
    client, store = _signed_in(app)
    prefix = get_settings(app).redis_key_prefix
    store.delete(*store.scan_iter(f"{prefix}:session:*"))  # Redis restarted empty
    response = client.get("/profile")
    assert response.status_code == 303 and "/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has expired. Please sign in again." in page
    assert "revoked" not in page


def _pooled_client_ids(app: Flask) -> list[int]:
    """The Redis client ids of the app's idle pooled connections."""
    store = get_redis(app)
    assert store is not None
    ids = []
    for connection in list(store.connection_pool._available_connections):
        connection.send_command("CLIENT", "ID")
        ids.append(int(connection.read_response()))
    return ids


def test_a_session_outlives_its_pooled_connection_being_cut(
    redis_apps: tuple[Flask, Flask],
) -> None:
    """Redis restarting or a proxy dropping idle connections: the next page reads the
    session on a fresh connection, and nothing counts as an outage."""
    app = redis_apps[0]
    client, store = _signed_in(app)
    killer = redis.Redis.from_url(require("REDIS_URL"))
    try:
        for client_id in _pooled_client_ids(app):
            killer.client_kill_filter(_id=str(client_id))
    finally:
        killer.close()
    assert client.get("/profile").status_code == 200
    assert store.breaker.state == "closed"


def test_a_session_read_cut_mid_command_is_sent_again_once(
    redis_apps: tuple[Flask, Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = get_redis(redis_apps[0])
    assert store is not None
    key = f"{get_settings(redis_apps[0]).redis_key_prefix}:read-test"
    store.set(key, b"kept")
    sent: Any = redis.connection.AbstractConnection.send_command
    failures = iter([True])

    def cut_once(self: Any, *args: Any, **kwargs: Any) -> None:
        if next(failures, False):
            raise redis.exceptions.ConnectionError("connection reset by peer")
        sent(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", cut_once)
    try:
        assert store.read(key) == b"kept"
        assert store.read(f"{key}:absent") is None
        failures = iter([True, True])  # cut twice: the read fails, as an outage
        with pytest.raises(ServiceDown):
            store.read(key)
    finally:
        monkeypatch.undo()
        store.delete(key)
        store.breaker.succeeded()
