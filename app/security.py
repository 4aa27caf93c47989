"""Who is asking: Flask-Login sessions for pages, bearer tokens for the API.

Also the abuse controls (rate limits, sign-in lockout) and the helpers views use
to end sessions. The JSON API never looks at the session cookie, so it needs no
CSRF token; pages never accept bearer tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import AnonymousUserMixin, LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from app.core.breaker import ServiceDown
from app.core.events import Actor
from app.core.redis_conn import REDIS_TIMEOUT, get_redis
from app.core.sessions import (
    OUTAGE_CSRF_KEY,
    FallbackSession,
    RedisSessionInterface,
    rotate_session,
)
from app.core.sql import SAFE_METHODS
from app.core.throttle import FailureThrottle, MemoryFailureThrottle, RedisFailureThrottle
from app.core.token_store import MemoryTokenStore, RedisTokenStore, TokenStore
from app.edge import API_PREFIX, is_api_request
from app.errors import NotFound, Unauthorized
from app.extensions import csrf, db
from app.models.user import User
from app.services import users as user_service
from app.services.identity import identity
from app.settings import Settings

SIGNED_CSRF_KEY = "_csrf_signed"
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


class Anonymous(AnonymousUserMixin):
    """The visitor who has not signed in: may do nothing but public things."""

    id = None
    role = "anonymous"
    is_admin = False
    can_write = False


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Load the session's user; a stale epoch or a deactivated account ends the session."""
    user_id, _, epoch = session_id.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = identity(db.session, int(user_id))
    if user is None or not user.is_active or user.auth_epoch != int(epoch):
        return None
    return user


def current_db_user() -> User:
    """The signed-in user as a row of this request's session, for code that changes it."""
    try:
        return user_service.get_user(db.session, int(current_user.id))
    except NotFound:
        raise Unauthorized() from None


def init_security(app: Flask, settings: Settings) -> None:
    """Wire Flask-Login, sessions, the token store, limits and the lockout throttle."""
    login_manager.init_app(app)
    login_manager.anonymous_user = Anonymous
    login_manager.session_protection = "basic"
    redis_client = get_redis(app)
    prefix = settings.redis_key_prefix
    store: TokenStore
    throttle: FailureThrottle
    if redis_client is not None:
        app.session_interface = RedisSessionInterface(
            redis_client, prefix, settings.session_ttl_seconds, no_session_under=API_PREFIX
        )
        store = RedisTokenStore(redis_client, prefix)
        throttle = RedisFailureThrottle(redis_client, f"{prefix}:login")
    else:
        store, throttle = MemoryTokenStore(), MemoryFailureThrottle()
    app.extensions["token_store"] = store
    app.extensions["login_throttle"] = throttle
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_STORAGE_OPTIONS={
            "socket_connect_timeout": REDIS_TIMEOUT,
            "socket_timeout": REDIS_TIMEOUT,
        },
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,  # Redis down: limits per process, not none
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_KEY_PREFIX=f"{prefix}:limits",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_ENABLED=settings.rate_limits_enabled,
        PERMANENT_SESSION_LIFETIME=settings.session_ttl_seconds,
    )
    # Flask-Limiter keeps the first app's key prefix forever; each app (and test) sets its own.
    limiter._key_prefix = f"{prefix}:limits"
    limiter.init_app(app)
    _check_limits_on_writes_only(app)
    app.after_request(_private_responses_not_stored)
    # Replaces Flask-WTF's csrf_token() in templates (its context processor runs first).
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})


def _check_limits_on_writes_only(app: Flask) -> None:
    """Run Flask-Limiter's per-request hooks on writes only: every limit guards a POST, and
    on a read the hooks would resolve the endpoint's limits just to find none apply (before
    the view) and look for limit headers to add that cannot be there (after it)."""
    hooks = app.before_request_funcs.get(None, [])
    check = limiter._check_request_limit
    if check not in hooks:  # RATELIMIT_ENABLED off: Flask-Limiter hooked nothing
        return
    hooks[hooks.index(check)] = _on_writes(check)
    after = app.after_request_funcs.get(None, [])
    for position, hook in enumerate(after):
        if isinstance(hook, partial) and hook.args[:1] == (limiter,):  # its header injection
            after[position] = _on_writes(hook)


def _on_writes(hook: Callable[..., Any]) -> Callable[..., Any]:
    """`hook`, run for writes only; a read passes through (its response, if it is given one)."""

    def on_writes(*args: Any) -> Any:
        if request.method in SAFE_METHODS:
            return args[0] if args else None
        return hook(*args)

    return on_writes


@limiter.request_filter
def _safe_method() -> bool:
    """Reads are never rate limited: every limit guards a POST (sign-in, reset, register),
    so skip Flask-Limiter's per-request bookkeeping on the pages everyone loads."""
    return request.method in SAFE_METHODS


def csrf_token() -> str:
    """The session's CSRF token for forms and htmx, signed once per session.

    Flask-WTF signs the session's raw token again on every page (JSON, zlib, HMAC).
    Tokens here never expire (WTF_CSRF_TIME_LIMIT=None), so the signature's
    timestamp carries nothing: the first signed token is kept in the session and
    validates like a fresh one. Signing in starts a new session, hence a new token.
    """
    signed = session.get(SIGNED_CSRF_KEY)
    if not isinstance(signed, str):
        signed = generate_csrf()
        session[SIGNED_CSRF_KEY] = signed
    return signed


def check_csrf() -> None:
    """Flask-WTF's check of this write's token against the session's; a token a stand-in
    session issued during a Redis outage is valid too (app/core/sessions.py)."""
    try:
        csrf.protect(apply_exemptions=True)
    except CSRFError:
        if OUTAGE_CSRF_KEY not in session:
            raise
        try:
            validate_csrf(csrf._get_csrf_token(), token_key=OUTAGE_CSRF_KEY)
        except ValidationError:
            raise CSRFError("The CSRF tokens do not match.") from None


def _private_responses_not_stored(response: Response) -> Response:
    """Signed-in pages, every API answer and every failure stay out of shared and browser
    caches. Only a user this request already loaded counts: loading one here could need
    the very service whose failure is being answered."""
    if request.endpoint == "static" or "Cache-Control" in response.headers:
        return response
    user = g.get("_login_user")
    signed_in = user is not None and user.is_authenticated
    if signed_in or is_api_request() or response.status_code >= 500:
        response.headers["Cache-Control"] = "no-store"
    return response


def token_store() -> TokenStore:
    store: TokenStore = current_app.extensions["token_store"]
    return store


def login_throttle() -> FailureThrottle:
    throttle: FailureThrottle = current_app.extensions["login_throttle"]
    return throttle


def client_ip() -> str | None:
    """The client address (ProxyFix in production puts the real one here)."""
    return request.remote_addr


def current_actor() -> Actor:
    """The signed-in user and IP, for the audit log."""
    return Actor(user_id=current_user.id if current_user.is_authenticated else None, ip=client_ip())


def sessions_unavailable() -> bool:
    """True while the session store is down: this request has a stand-in session that
    can carry a CSRF token but never a sign-in (see app/core/sessions.py)."""
    return isinstance(session, FallbackSession)


def require_sessions() -> None:
    """Refuse (503) a request that must sign someone in or out while sessions are down;
    checked before anything is written or any attempt is counted."""
    if sessions_unavailable():
        raise ServiceDown("sessions", 5, detail="the session store is not answering")


def sign_in(user: User, *, remember: bool) -> None:
    """Start a brand-new session for this user (no fixation).

    "Keep me signed in" makes the session itself outlive the browser (a
    permanent cookie) rather than issuing Flask-Login's separate remember
    cookie: there is then one credential, and signing out ends it on the
    server (Redis mode) instead of leaving a copy valid for two weeks.
    """
    require_sessions()
    rotate_session(session)
    session.permanent = remember
    login_user(user, remember=False)
    interface = current_app.session_interface
    if isinstance(interface, RedisSessionInterface):
        interface.store_now(session)


def sign_out() -> None:
    """End this browser's session, server-side too."""
    logout_user()
    rotate_session(session)


def end_server_sessions(user_id: int) -> None:
    """Delete the user's stored sessions and API tokens (Redis mode); epochs cover the rest."""
    interface = current_app.session_interface
    if isinstance(interface, RedisSessionInterface):
        interface.end_user_sessions(user_id)
    token_store().revoke_user(user_id)


def safe_next(target: str | None, fallback: str = "/") -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target:
        return fallback
    target = target.strip()
    if any(c in target for c in ("\\", "\r", "\n", "\t", "\x00")) or not target.startswith("/"):
        return fallback
    if target.startswith(("//", "/\\")):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def counts_toward_limits(response: Response) -> bool:
    """Rate limits count what the visitor did, not our failures: a 5xx or 503 is free."""
    return response.status_code < 500


def account_ip_key() -> str:
    """Rate-limit key for (account, client IP): a flood elsewhere never blocks the owner."""
    data = request.get_json(silent=True) if request.is_json else None
    raw = request.form.get("email") or (data.get("email") if isinstance(data, dict) else "") or ""
    return f"account:{str(raw).strip().lower()[:254]}|{client_ip()}"
