"""AuthService and AuthToken: JWT bearer tokens for the React client, and the auth endpoints.

Tokens are HS256 JWTs (the algorithm is pinned on decode, so `alg: none` and
algorithm swaps fail) carrying `sub`, `jti`, `iat`, `exp` and the user's auth
epoch. A token is valid only while its `jti` is in the active-token store for
the user its `sub` names, that user is active, and it was issued after the
user's last password change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

from app.api.schemas import LoginRequest, TokenOut, UserOut, validate_body
from app.core.token_store import TokenStore
from app.edge import is_api_request
from app.errors import Unauthorized
from app.extensions import db
from app.models.user import User
from app.policy import declared_policy, policy
from app.security import (
    client_ip,
    counts_toward_limits,
    current_db_user,
    limiter,
    login_throttle,
    token_store,
)
from app.services import accounts
from app.services.identity import identity, issued_before
from app.settings import get_settings

ALGORITHM = "HS256"

bp = Blueprint("api_auth", __name__, url_prefix="/auth")


@dataclass(frozen=True)
class AuthToken:
    """An issued token and what it says."""

    value: str
    jti: str
    user_id: int
    issued_at: datetime
    expires_at: datetime


class AuthService:
    """Issue, verify and revoke API tokens."""

    def __init__(
        self, *, secret_key: str, store: TokenStore, ttl_seconds: int, session: Session
    ) -> None:
        self._secret = secret_key
        self._store = store
        self._ttl = ttl_seconds
        self._session = session

    def issue(self, user: User) -> AuthToken:
        """A new signed token, registered as active until it expires."""
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=self._ttl)
        jti = uuid.uuid4().hex
        claims = {
            "sub": str(user.id),
            "jti": jti,
            "iat": now,
            "exp": expires,
            "ep": user.auth_epoch,
        }
        value = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        self._store.add(jti, user.id, self._ttl)
        return AuthToken(value, jti, user.id, now, expires)

    def decode(self, value: str) -> dict[str, Any]:
        """Verify signature, algorithm and required claims; raise Unauthorized otherwise."""
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired. Sign in again.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is not valid.") from exc
        return claims

    def verify_token(self, value: str) -> User:
        """The user a valid, unrevoked token belongs to."""
        claims = self.decode(value)
        sub = str(claims["sub"])
        if not (sub.isascii() and sub.isdigit()):
            raise Unauthorized("The token is not valid.")
        user_id = int(sub)
        status = self._store.status(str(claims["jti"]), user_id)  # live, and issued to `sub`
        if status == "revoked":
            raise Unauthorized("The token has been revoked. Sign in again.")
        if status != "active":  # e.g. Redis lost its data: nobody revoked it
            raise Unauthorized("Your session has expired. Sign in again.")
        user = identity(self._session, user_id)
        if user is None or not user.is_active:
            raise Unauthorized("The token's account is not active.")
        if claims.get("ep", 0) != user.auth_epoch:
            raise Unauthorized("The token was ended by a sign-out everywhere or password change.")
        if issued_before(user, int(claims["iat"])):
            raise Unauthorized("The password changed after this token was issued. Sign in again.")
        return user

    def revoke(self, value: str) -> None:
        """Remove a (valid) token from the active store."""
        claims = self.decode(value)
        self._store.revoke(str(claims["jti"]))


def auth_service() -> AuthService:
    """The AuthService for the current app and request."""
    settings = get_settings()
    return AuthService(
        secret_key=settings.secret_key,
        store=token_store(),
        ttl_seconds=settings.token_ttl_seconds,
        session=db.session,
    )


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header, if present."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def load_api_user() -> None:
    """For /api requests: authenticate by bearer token only (never the session cookie)."""
    if not is_api_request():
        return
    manager = current_app.login_manager  # type: ignore[attr-defined]
    token = bearer_token()
    view = current_app.view_functions.get(request.endpoint or "")
    if token is None or declared_policy(view) == "public":  # a stale token must not block login
        manager._update_request_context_with_user(None)
        return
    manager._update_request_context_with_user(auth_service().verify_token(token))


@bp.post("/login")
@policy("public")
@limiter.limit(lambda: get_settings().login_rate_limit, deduct_when=counts_toward_limits)
def login() -> Response:
    """Exchange email and password for a bearer token."""
    body = validate_body(LoginRequest)
    with db.transaction() as session:
        user = accounts.sign_in_attempt(
            session,
            body.email,
            body.password,
            throttle=login_throttle(),
            iterations=get_settings().password_hash_iterations,
            ip=client_ip(),
        )
    if user is None:
        raise Unauthorized("The email or password is incorrect, or the account is inactive.")
    token = auth_service().issue(user)
    out = TokenOut(
        access_token=token.value, expires_at=token.expires_at, user=UserOut.model_validate(user)
    )
    return jsonify(out.model_dump(mode="json"))


@bp.post("/logout")
@policy("session")
def logout() -> Response:
    """Revoke the token used for this request."""
    token = bearer_token()
    if token:
        auth_service().revoke(token)
    with db.transaction() as session:
        accounts.record_logout(session, current_db_user(), ip=client_ip())
    return Response(status=204)
