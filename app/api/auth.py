"""AuthService and AuthToken: JWT bearer tokens for the React client, and the auth endpoints.

Tokens are HS256 JWTs (the algorithm is pinned on decode, so `alg: none` and
algorithm swaps fail) carrying `sub`, `jti`, `iat`, `exp` and the user's auth
epoch. A token is valid only while its `jti` is in the active-token store for
the user its `sub` names, that user is active, and it was issued after the
user's last password change.

The React client also gets a refresh token, in an HttpOnly, SameSite=Strict cookie
scoped to /api/v1/auth, so a reload can restore its in-memory access token
(`POST /auth/refresh`). Each sign-in starts a family; every refresh spends the
token and sets the next one; the same token within `REFRESH_GRACE_SECONDS` (a
second tab) gets the same next one. Later, a spent token means two parties hold
it: the whole family ends (access tokens included), logged and audited. A family
lives `REFRESH_TTL_SECONDS` past its last use and never longer than
`REFRESH_MAX_SECONDS` after the sign-in; sign-out ends it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import jwt
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

from app.api.schemas import LoginRequest, TokenOut, UserOut, validate_body
from app.core.token_store import Rotation, TokenStatus, TokenStore
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


class RefreshReused(Unauthorized):
    """A spent refresh token came back after its grace window: its family was ended."""

    def __init__(self, *, user_id: int, family: str, ended: int) -> None:
        super().__init__("This sign-in was ended because its refresh token was used twice.")
        self.user_id, self.family, self.ended = user_id, family, ended


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
        refresh_grace_seconds: int = 5,
    ) -> None:
        self._secret = secret_key
        self._store = store
        self._ttl = ttl_seconds
        self._session = session
        self._refresh_ttl = refresh_ttl_seconds
        self._refresh_max = refresh_max_seconds
        self._refresh_grace = refresh_grace_seconds

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

        Within the grace window a second use (another tab) gets the same next token. An
        account deactivated, signed out everywhere or with a new password since ends the
        family; so does a reuse after the window (RefreshReused).
        """
        claims = self._decode_refresh(value)
        user_id, family = int(claims["sub"]), str(claims["fam"])
        user = identity(self._session, user_id)
        stale = user is None or not user.is_active or claims.get("ep", 0) != user.auth_epoch
        if user is None or stale or issued_before(user, int(claims["iat"])):
            self._store.revoke_family(family)
            raise Unauthorized("Your session has ended. Sign in again.")
        following = self._next_claims(user, family, int(claims["fst"]))
        rotation = Rotation(
            next_jti=following["jti"],
            ttl_seconds=following["exp"] - following["iat"],
            family=family,
            note=json.dumps(following),
            grace_seconds=self._refresh_grace,
        )
        found, note = self._store.rotate(str(claims["jti"]), user_id, rotation)
        if found == "revoked" and note is not None:  # the twin of a request just answered
            following = json.loads(note)
            found = self._store.status(following["jti"], user_id)
        if found != "active":
            self._refuse(found, user_id, family)
        return user, self.issue(user, family=family), self._sign_refresh(following)

    def _refuse(self, found: TokenStatus, user_id: int, family: str) -> NoReturn:
        """A spent token outside its grace window ends its family (a reuse); one the store
        no longer knows has expired."""
        if found != "revoked":
            raise Unauthorized("Your session has expired. Sign in again.")
        ended = self._store.revoke_family(family)
        if not ended:  # nothing left to end: signed out, or a reuse already caught
            raise Unauthorized("Your session has ended. Sign in again.")
        log.warning(
            "refresh token reused; family %s of user %s ended (%d tokens)", family, user_id, ended
        )
        raise RefreshReused(user_id=user_id, family=family, ended=ended)

    def end_family(self, value: str) -> None:
        """Revoke every token of the sign-in a refresh token belongs to (sign-out)."""
        try:
            claims = self._decode_refresh(value, verify_exp=False)
        except Unauthorized:
            return  # nothing we issued, or nothing left to end
        self._store.revoke_family(str(claims["fam"]))

    def _refresh_token(self, user: User, family: str, started: int) -> RefreshToken:
        claims = self._next_claims(user, family, started)
        self._store.add(claims["jti"], user.id, claims["exp"] - claims["iat"], family=family)
        return self._sign_refresh(claims)

    def _next_claims(self, user: User, family: str, started: int) -> dict[str, Any]:
        """The claims of a family's next refresh token (not yet registered or signed)."""
        now = int(_now().timestamp())
        expires = min(now + self._refresh_ttl, started + self._refresh_max)
        if expires <= now:
            raise Unauthorized("Your session has expired. Sign in again.")
        return {
            "sub": str(user.id),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": expires,
            "ep": user.auth_epoch,
            "aud": REFRESH_AUDIENCE,
            "fam": family,
            "fst": started,  # when the sign-in began: the family's age limit counts from it
        }

    def _sign_refresh(self, claims: dict[str, Any]) -> RefreshToken:
        value = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return RefreshToken(value, claims["fam"], datetime.fromtimestamp(claims["exp"], UTC))

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
        refresh_grace_seconds=settings.refresh_grace_seconds,
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
        if isinstance(exc, RefreshReused):  # audited: one reading of it is a stolen cookie
            with db.transaction() as session:
                accounts.record_refresh_reuse(
                    session, exc.user_id, family=exc.family, ended=exc.ended, ip=client_ip()
                )
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
