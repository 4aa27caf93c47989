"""Defence in depth for API tokens: a live token id counts only for the user it was issued to.

Should the signing key leak, a token minted with the `jti` of someone's live
token but naming another user (`sub`) must not work: the active-token store
binds each id to its user. Checked with both stores, in memory and in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from flask import Flask

from app import create_app
from app.core.token_store import MemoryTokenStore, RedisTokenStore, TokenStore
from app.extensions import db
from app.security import token_store
from app.settings import get_settings
from tests.conftest import make_settings, require
from tests.factories import make_role_accounts


@pytest.fixture(params=["memory", "redis"])
def token_app(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app whose active-token store is in memory, or in Redis; one account per role."""
    settings: dict[str, Any] = {"database_url": sqlite_url, "rate_limits_enabled": False}
    prefix = f"test-tokens-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        settings |= {"redis_url": require("REDIS_URL"), "redis_key_prefix": prefix}
    app = create_app(make_settings(tmp_path, **settings))
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    with app.app_context():
        kind = RedisTokenStore if request.param == "redis" else MemoryTokenStore
        assert isinstance(token_store(), kind)
    yield app
    db.dispose(app)
    if request.param == "redis":
        client = redis.Redis.from_url(settings["redis_url"])
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def _sign_in(app: Flask, email: str) -> tuple[str, dict[str, Any]]:
    response = app.test_client().post(
        "/api/v1/auth/login", json={"email": email, "password": "correct-horse-battery"}
    )
    assert response.status_code == 200, response.json
    token: str = response.json["access_token"]  # type: ignore[index]
    return token, jwt.decode(token, options={"verify_signature": False})


def _me(app: Flask, token: str) -> Any:
    return app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_live_token_id_naming_another_user_is_refused(token_app: Flask) -> None:
    token, claims = _sign_in(token_app, "user@example.com")
    _, admin_claims = _sign_in(token_app, "admin@example.com")
    assert _me(token_app, token).json["email"] == "user@example.com"  # type: ignore[index]
    # the user's live jti, re-signed (the key has leaked) to name the admin
    forged = jwt.encode(
        {**claims, "sub": admin_claims["sub"], "ep": admin_claims["ep"]},
        token_app.config["SECRET_KEY"],
        algorithm="HS256",
    )
    refused = _me(token_app, forged)
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert "admin@example.com" not in refused.get_data(as_text=True)
    # and the genuine token still works, for its own user
    assert _me(token_app, token).json["email"] == "user@example.com"  # type: ignore[index]


def test_the_store_binds_each_token_id_to_its_user(token_app: Flask) -> None:
    with token_app.app_context():
        store: TokenStore = token_store()
        store.add("jti-of-7", 7, 60)
        assert store.status("jti-of-7", 7) == "active"
        assert store.status("jti-of-7", 8) == "unknown"
        assert store.status("jti-of-nobody", 7) == "unknown"
        assert store.revoke_user(7) == 1
        assert store.status("jti-of-7", 7) == "revoked"


def _forget_every_token(app: Flask) -> None:
    """What a Redis restart without persistence (or a new process in memory mode) does."""
    with app.app_context():
        store = token_store()
        if isinstance(store, RedisTokenStore):
            client = redis.Redis.from_url(get_settings().redis_url)
            prefix = get_settings().redis_key_prefix
            client.delete(*client.scan_iter(f"{prefix}:token:*"))
        else:
            assert isinstance(store, MemoryTokenStore)
            store._tokens.clear()


def test_a_forgotten_token_says_expired_and_a_revoked_one_says_revoked(
    token_app: Flask,
) -> None:
    revoked, _ = _sign_in(token_app, "user@example.com")
    out = token_app.test_client().post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {revoked}"}
    )
    assert out.status_code == 204
    answer = _me(token_app, revoked)
    assert answer.status_code == 401
    assert answer.json["detail"] == "The token has been revoked. Sign in again."  # type: ignore[index]

    forgotten, _ = _sign_in(token_app, "user@example.com")
    assert _me(token_app, forgotten).status_code == 200
    _forget_every_token(token_app)
    answer = _me(token_app, forgotten)
    assert answer.status_code == 401
    assert answer.json["detail"] == "Your session has expired. Sign in again."  # type: ignore[index]
