"""One declared access policy per route, enforced centrally (default deny).

Every view is decorated with `@policy(...)`; a before-request hook reads the
declaration and refuses what it does not allow. A view without a declaration
is refused too, and a test walks the URL map so that never ships.

- public:  anyone, signed in or not (sign-in pages, health checks)
- session: any signed-in user, guests included, any method (sign out)
- read:    any signed-in user, safe methods only (pages guests may see)
- write:   admins and users; guests get 403 (every state change)
- admin:   admins only
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeVar, get_args

from flask import Flask, current_app, request, session
from flask_login import current_user

from app.core.breaker import ServiceDown
from app.core.sessions import FallbackSession
from app.core.sql import SAFE_METHODS
from app.edge import is_api_request
from app.errors import Forbidden, Unauthorized
from app.security import check_csrf

log = logging.getLogger(__name__)

Policy = Literal["public", "session", "read", "write", "admin"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
_ATTR = "__access_policy__"

F = TypeVar("F", bound=Callable[..., object])


def policy(name: Policy) -> Callable[[F], F]:
    """Declare who may call this view."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}")

    def mark(view: F) -> F:
        setattr(view, _ATTR, name)
        return view

    return mark


def declared_policy(view: Callable[..., object] | None) -> Policy | None:
    """The policy a view declared, or None."""
    return getattr(view, _ATTR, None) if view is not None else None


def check_access(name: Policy | None, method: str) -> None:
    """Raise Unauthorized/Forbidden unless the current user may proceed."""
    if name is None:
        raise Forbidden("This address has no access policy.")
    if name == "public":
        return
    if not current_user.is_authenticated:
        raise Unauthorized()
    if name == "session":
        return
    if name == "read":
        if method not in SAFE_METHODS:
            raise Forbidden()
        return
    if name == "write" and current_user.can_write:
        return
    if name == "admin" and current_user.is_admin:
        return
    raise Forbidden()


def unverifiable_session() -> bool:
    """A session cookie came with this request but the session store could not read it."""
    return isinstance(session, FallbackSession) and session.signed_in_elsewhere


def register_policy_enforcement(app: Flask, *, public_endpoints: tuple[str, ...] = ()) -> None:
    """Check every request against its view's policy before the view runs."""
    for endpoint in ("static", *public_endpoints):
        view = app.view_functions.get(endpoint)
        if view is not None:
            setattr(view, _ATTR, "public")

    @app.before_request
    def _enforce() -> None:
        if request.endpoint is None:  # 404 / 405: nothing to protect
            return
        view = current_app.view_functions.get(request.endpoint)
        name = declared_policy(view)
        if name is None:
            log.error("endpoint %s has no access policy; refused", request.endpoint)
        if name != "public" and unverifiable_session():  # fail closed, never let it pass
            raise ServiceDown("sessions", 5, detail="the session store is not answering")
        check_access(name, request.method)
        # CSRF after the sign-in check: an expired session is sent to sign in (and
        # back), not told its form expired. The API uses bearer tokens, no cookies.
        unsafe = request.method not in SAFE_METHODS and not is_api_request()
        if unsafe and current_app.config.get("WTF_CSRF_ENABLED", True):
            check_csrf()
