"""The JSON auth API: tokens, /me, and every way a token can be bad (401, never 500)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import User
from tests.conftest import login
from tests.factories import PASSWORD

SECRET = "test-secret-key-" + "x" * 32


def api_login(
    client: FlaskClient, email: str = "user@example.com", password: str = PASSWORD
) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(client: FlaskClient, accounts: dict[str, int]) -> str:
    response = api_login(client)
    assert response.status_code == 200, response.json
    value: str = response.json["access_token"]  # type: ignore[index]
    return value


def test_login_returns_a_24h_bearer_token_and_the_user(
    client: FlaskClient, accounts: dict[str, int]
) -> None:
    body = api_login(client).json
    assert body["token_type"] == "Bearer"  # type: ignore[index]
    assert body["user"]["email"] == "user@example.com" and body["user"]["role"] == "user"  # type: ignore[index]
    assert "password_hash" not in body["user"]  # type: ignore[index]
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])  # type: ignore[index]
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert {"sub", "jti", "iat", "exp"} <= set(claims)
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))  # type: ignore[index]
    assert abs((expires - datetime.now(UTC)) - timedelta(hours=24)) < timedelta(minutes=1)


def test_login_failure_is_problem_json(client: FlaskClient, accounts: dict[str, int]) -> None:
    response = api_login(client, password="wrong-password")
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert response.json["status"] == 401  # type: ignore[index]
    bad_body = client.post("/api/v1/auth/login", json={"email": "", "extra": 1})
    assert bad_body.status_code == 422 and "password" in bad_body.json["errors"]  # type: ignore[index]
    assert client.post("/api/v1/auth/login", data="not json").status_code == 422


def test_me_with_and_without_token(client: FlaskClient, token: str) -> None:
    assert client.get("/api/v1/me", headers=bearer(token)).json["email"] == "user@example.com"  # type: ignore[index]
    missing = client.get("/api/v1/me")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"


def test_api_ignores_the_session_cookie(client: FlaskClient, accounts: dict[str, int]) -> None:
    login(client, "user@example.com")
    assert client.get("/profile").status_code == 200
    assert client.get("/api/v1/me").status_code == 401  # cookies never authenticate the API


def test_patch_me_changes_allowed_fields(app: Flask, client: FlaskClient, token: str) -> None:
    response = client.patch("/api/v1/me", json={"name": "API Name"}, headers=bearer(token))
    assert response.status_code == 200 and response.json["name"] == "API Name"  # type: ignore[index]


@pytest.mark.parametrize(
    "field", [{"role": "admin"}, {"is_active": False}, {"id": 1}, {"password_hash": "x"}]
)
def test_patch_me_refuses_mass_assignment_with_422(
    client: FlaskClient, token: str, field: dict[str, Any]
) -> None:
    response = client.patch("/api/v1/me", json={"name": "Ok", **field}, headers=bearer(token))
    assert response.status_code == 422
    assert response.json["errors"][next(iter(field))] == "This field may not be set."  # type: ignore[index]


def test_patch_me_validation_errors(
    client: FlaskClient, token: str, accounts: dict[str, int]
) -> None:
    taken = client.patch("/api/v1/me", json={"email": "admin@example.com"}, headers=bearer(token))
    assert taken.status_code == 409 and "email" in taken.json["errors"]  # type: ignore[index]
    invalid = client.patch("/api/v1/me", json={"email": "nobody@host.test"}, headers=bearer(token))
    assert invalid.status_code == 422 and "email" in invalid.json["errors"]  # type: ignore[index]


def test_patch_me_new_email_needs_the_current_password(
    client: FlaskClient, token: str, accounts: dict[str, int]
) -> None:
    bare = client.patch("/api/v1/me", json={"email": "new@example.com"}, headers=bearer(token))
    assert bare.status_code == 403  # well-formed, but the caller has not proven who they are
    assert bare.json["errors"]["current_password"].startswith("Enter your current password")  # type: ignore[index]
    wrong = client.patch(
        "/api/v1/me",
        json={"email": "new@example.com", "current_password": "nope"},
        headers=bearer(token),
    )
    assert wrong.status_code == 403
    assert wrong.json["errors"]["current_password"] == "That is not your current password."  # type: ignore[index]
    ok = client.patch(
        "/api/v1/me",
        json={"email": "new@example.com", "current_password": PASSWORD},
        headers=bearer(token),
    )
    assert ok.status_code == 200 and ok.json["email"] == "new@example.com"  # type: ignore[index]
    assert "current_password" not in ok.json  # type: ignore[operator]


def test_guest_token_cannot_write(client: FlaskClient, accounts: dict[str, int]) -> None:
    guest = api_login(client, "guest@example.com").json["access_token"]  # type: ignore[index]
    assert client.get("/api/v1/me", headers=bearer(guest)).status_code == 200
    assert client.patch("/api/v1/me", json={"name": "x"}, headers=bearer(guest)).status_code == 403


def _forge(claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _none_alg(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_hostile_tokens_are_401_never_500(
    client: FlaskClient, token: str, accounts: dict[str, int]
) -> None:
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    admin_claims = {**claims, "sub": str(accounts["admin"])}
    now = int(datetime.now(UTC).timestamp())
    hostile = {
        "tampered payload": token.split(".")[0]
        + "."
        + _forge(admin_claims).split(".")[1]
        + "."
        + token.split(".")[2],
        "tampered signature": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "alg none": _none_alg(admin_claims),
        "wrong algorithm": _forge(claims, algorithm="HS512"),
        "wrong key": _forge(claims, key="another-secret-key-" + "y" * 32),
        "expired": _forge({**claims, "iat": now - 7200, "exp": now - 3600}),
        "no exp": _forge({k: v for k, v in claims.items() if k != "exp"}),
        "no iat": _forge({k: v for k, v in claims.items() if k != "iat"}),
        "unknown jti": _forge({**claims, "jti": "0" * 32}),
        "garbage": "not.a.jwt",
        "empty": "",
        "sub not a number": _forge({**claims, "sub": "abc"}),
    }
    for name, value in hostile.items():
        response = client.get(
            "/api/v1/me", headers=bearer(value) if value else {"Authorization": "Bearer"}
        )
        assert response.status_code == 401, name
        assert response.mimetype == "application/problem+json", name


def test_logout_revokes_the_token(client: FlaskClient, token: str) -> None:
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    reused = client.get("/api/v1/me", headers=bearer(token))
    assert reused.status_code == 401 and "revoked" in reused.json["detail"]  # type: ignore[index]


def test_token_of_a_deactivated_user_is_refused(
    app: Flask, client: FlaskClient, token: str, accounts: dict[str, int]
) -> None:
    with app.app_context():
        db.session.get(User, accounts["user"]).is_active = False  # type: ignore[union-attr]
        db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_token_issued_before_a_password_change_is_refused(client: FlaskClient, token: str) -> None:
    page_client = client.application.test_client()
    login(page_client, "user@example.com")
    changed = page_client.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": "another-password",
            "confirm_password": "another-password",
        },
    )
    assert changed.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    fresh = api_login(client, password="another-password").json["access_token"]  # type: ignore[index]
    assert client.get("/api/v1/me", headers=bearer(fresh)).status_code == 200


def test_sign_out_everywhere_ends_api_tokens(client: FlaskClient, token: str) -> None:
    page_client = client.application.test_client()
    login(page_client, "user@example.com")
    page_client.post("/profile/sessions/end")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
