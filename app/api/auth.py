"""AuthService and AuthToken: JWT bearer tokens for the React client, and the auth endpoints.

Tokens are HS256 JWTs (the algorithm is pinned on decode, so `alg: none` and
algorithm swaps fail) carrying `sub`, `jti`, `iat`, `exp` and the user's auth
epoch. A token is valid only while its `jti` is in the active-token store for
the user its `sub` names, that user is active, and it was issued after the
user's last password change.

The React client also gets a refresh token, in an HttpOnly, SameSite=Strict cookie
scoped to /api/v1/auth, so a reload can restore its in-memory access token
(`POST /auth/refresh`). Each sign-in starts a family; every refresh spends the
token and sets the next one. Presenting a spent token again means two parties
hold it, so the whole family ends, access tokens issued by refreshing included.
A family lives `REFRESH_TTL_SECONDS` past its last use and never longer than
`REFRESH_MAX_SECONDS` after the sign-in; sign-out ends it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

from app.api.schemas import LoginRequest, TokenOut, UserOut, validate_body
from app.core.token_store import TokenStore
from app.edge import is_api_request, render_error
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
REFRESH_AUDIENCE = "refresh"  # access-token decoding refuses any token with an audience
REFRESH_COOKIE = "refresh_token"
REFRESH_PATH = "/api/v1/auth"  # sent to refresh and logout, nowhere else

log = logging.getLogger(__name__)

bp = Blueprint("api_auth", __name__, url_prefix="/auth")


@dataclass(frozen=True)
class AuthToken:
    """An issued token and what it says."""

    value: str
    jti: str
    user_id: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token: one link of a sign-in's family."""

    value: str
    family: str
    expires_at: datetime


class AuthService:
    """Issue, verify and revoke API tokens."""

    def __init__(
        self,
        *,
        secret_key: str,
        store: TokenStore,
        ttl_seconds: int,
        session: Session,
        refresh_ttl_seconds: int = 7 * 24 * 3600,
        refresh_max_seconds: int = 30 * 24 * 3600,
    ) -> None:
        self._secret = secret_key
        self._store = store
        self._ttl = ttl_seconds
        self._session = session
        self._refresh_ttl = refresh_ttl_seconds
        self._refresh_max = refresh_max_seconds

    def issue(self, user: User, *, family: str | None = None) -> AuthToken:
        """A new signed token, registered as active until it expires."""
        now = _now()
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
        self._store.add(jti, user.id, self._ttl, family=family)
        return AuthToken(value, jti, user.id, now, expires)

    def start_family(self, user: User) -> RefreshToken:
        """The first refresh token of a new sign-in."""
        return self._refresh_token(user, uuid.uuid4().hex, int(_now().timestamp()))

    def refresh(self, value: str) -> tuple[User, AuthToken, RefreshToken]:
        """Spend a refresh token: the user, a new access token and the family's next token.

        A spent (or revoked) token ends its whole family; so does an account that was
        deactivated, signed out everywhere or given a new password since.
        """
        claims = self._decode_refresh(value)
        user_id, family = int(claims["sub"]), str(claims["fam"])
        found = self._store.consume(str(claims["jti"]), user_id)
        if found == "revoked":
            ended = self._store.revoke_family(family)
            log.warning(
                "refresh token reused; family %s of user %s ended (%d tokens)",
                family,
                user_id,
                ended,
            )
            raise Unauthorized("This sign-in was ended because its refresh token was used twice.")
        if found != "active":
            raise Unauthorized("Your session has expired. Sign in again.")
        user = identity(self._session, user_id)
        stale = user is None or not user.is_active or claims.get("ep", 0) != user.auth_epoch
        if user is None or stale or issued_before(user, int(claims["iat"])):
            self._store.revoke_family(family)
            raise Unauthorized("Your session has ended. Sign in again.")
        next_token = self._refresh_token(user, family, int(claims["fst"]))
        return user, self.issue(user, family=family), next_token

    def end_family(self, value: str) -> None:
        """Revoke every token of the sign-in a refresh token belongs to (sign-out)."""
        try:
            claims = self._decode_refresh(value, verify_exp=False)
        except Unauthorized:
            return  # nothing we issued, or nothing left to end
        self._store.revoke_family(str(claims["fam"]))

    def _refresh_token(self, user: User, family: str, started: int) -> RefreshToken:
        now = _now()
        deadline = datetime.fromtimestamp(started + self._refresh_max, UTC)
        expires = min(now + timedelta(seconds=self._refresh_ttl), deadline)
        ttl = int((expires - now).total_seconds())
        if ttl <= 0:
            raise Unauthorized("Your session has expired. Sign in again.")
        jti = uuid.uuid4().hex
        claims = {
            "sub": str(user.id),
            "jti": jti,
            "iat": now,
            "exp": expires,
            "ep": user.auth_epoch,
            "aud": REFRESH_AUDIENCE,
            "fam": family,
            "fst": started,  # when the sign-in began: the family's age limit counts from it
        }
        self._store.add(jti, user.id, ttl, family=family)
        value = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return RefreshToken(value, family, expires)

    def _decode_refresh(self, value: str, *, verify_exp: bool = True) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                self._secret,
                algorithms=[ALGORITHM],
                audience=REFRESH_AUDIENCE,
                options={
                    "require": ["exp", "iat", "sub", "jti", "fam", "fst"],
                    "verify_exp": verify_exp,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Your session has expired. Sign in again.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The refresh token is not valid.") from exc
        sub, started = str(claims["sub"]), claims["fst"]
        if not (sub.isascii() and sub.isdigit()) or not isinstance(started, int):
            raise Unauthorized("The refresh token is not valid.")
        return claims

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


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def auth_service() -> AuthService:
    """The AuthService for the current app and request."""
    settings = get_settings()
    return AuthService(
        secret_key=settings.secret_key,
        store=token_store(),
        ttl_seconds=settings.token_ttl_seconds,
        session=db.session,
        refresh_ttl_seconds=settings.refresh_ttl_seconds,
        refresh_max_seconds=settings.refresh_max_seconds,
    )


def token_response(user: User, token: AuthToken, refresh: RefreshToken) -> Response:
    """The token body, with the refresh cookie set beside it."""
    out = TokenOut(
        access_token=token.value, expires_at=token.expires_at, user=UserOut.model_validate(user)
    )
    response = jsonify(out.model_dump(mode="json"))
    response.set_cookie(
        REFRESH_COOKIE,
        refresh.value,
        expires=refresh.expires_at,
        path=REFRESH_PATH,
        secure=get_settings().preferred_url_scheme == "https",
        httponly=True,
        samesite="Strict",
    )
    return response


def _clear_refresh_cookie(response: Response) -> Response:
    secure = get_settings().preferred_url_scheme == "https"
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, httponly=True, samesite="Strict"
    )
    return response


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
    return new_sign_in(user)


def new_sign_in(user: User) -> Response:
    """An access token and the refresh cookie of a new family (a sign-in) for `user`."""
    service = auth_service()
    refresh = service.start_family(user)
    return token_response(user, service.issue(user, family=refresh.family), refresh)


@bp.post("/refresh")
@policy("public")
def refresh() -> Response:
    """Exchange the refresh cookie for a new access token and the next refresh cookie.

    Without any cookie the answer is 204: a client restoring a session after a reload
    learns that there is none without an error (browsers log every 401 as one).
    """
    value = request.cookies.get(REFRESH_COOKIE)
    if not value:  # nobody signed in on this browser: nothing to restore, nothing wrong
        return Response(status=204)
    try:
        user, token, next_token = auth_service().refresh(value)
    except Unauthorized as exc:  # problem JSON, and the dead cookie goes
        response = render_error(exc.status, exc.title, exc.message, code=exc.code)
        return _clear_refresh_cookie(response)
    return token_response(user, token, next_token)


@bp.post("/logout")
@policy("session")
def logout() -> Response:
    """Revoke the token used for this request and the sign-in its refresh cookie belongs to."""
    service = auth_service()
    token = bearer_token()
    if token:
        service.revoke(token)
    cookie = request.cookies.get(REFRESH_COOKIE)
    if cookie:
        service.end_family(cookie)
    with db.transaction() as session:
        accounts.record_logout(session, current_db_user(), ip=client_ip())
    return _clear_refresh_cookie(Response(status=204))
