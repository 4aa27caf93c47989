"""The page chrome every page repeats: the main navigation, the head's assets and the
flash messages' region, remembered.

The nav is the same HTML for every page a person views from one endpoint: about forty
template expressions, two includes and a dozen links, about 5% of a table page's CPU.
`nav_html` renders templates/_nav.html from the handful of values it shows (who is
signed in and their role, the endpoint, the session's CSRF token, whether sign-up is
open, the mount point) and keeps the result per process under exactly those values, so
a change to any of them (a new name, a new session) renders afresh. The head's
stylesheet, icon and scripts depend only on the mount point (and on the files, in debug,
where they are rendered every time).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, NamedTuple

from flask import current_app, get_flashed_messages, request
from markupsafe import Markup

from app.security import csrf_token
from app.utils.memo import remembered

MAX_REMEMBERED = 2048  # about 2-3 KB each: a few MB per process at most
_CHROME = "remembered_chrome"  # app.extensions key


class NavUser(NamedTuple):
    """What the nav shows of the signed-in person."""

    name: str | None
    email: str | None
    role: str


def nav_html(user: Any) -> Markup:
    """The nav for `user` (the signed-in user, or the anonymous one) on this page."""
    signed_in = bool(user.is_authenticated)
    who = NavUser(user.name, user.email, user.role) if signed_in else None
    values = {
        "signed_in": signed_in,
        "is_admin": bool(user.is_admin),
        "here": request.endpoint or "",
        "who": who,
        "csrf": csrf_token() if signed_in else "",
        "registration": bool(current_app.config.get("REGISTRATION_ENABLED")),
        "oob": False,
    }
    return _remembered("_nav.html", values)


def flashes_html() -> Markup:
    """The page's #flashes region with the messages waiting in the session; when there are
    none (most pages) the same empty region, remembered."""
    messages = get_flashed_messages(with_categories=True)
    if messages:
        return _render("_flashes.html", {"messages": messages, "oob": False})
    return _remembered("_flashes.html", {"messages": (), "oob": False})


def head_assets() -> Markup:
    """The head's stylesheet, icon and script tags."""
    if current_app.debug:
        return _render("_head_assets.html", {})
    return _remembered("_head_assets.html", {})


def _remembered(template: str, values: dict[str, Any]) -> Markup:
    """`template` rendered from `values` alone, kept per process under them."""
    key = (template, request.script_root, *values.values())
    kept: dict[Hashable, Markup] = current_app.extensions.setdefault(_CHROME, {})
    return remembered(kept, key, lambda: _render(template, values), MAX_REMEMBERED)


def _render(template: str, values: dict[str, Any]) -> Markup:
    html = current_app.jinja_env.get_template(template).render(values)
    return Markup(html)  # noqa: S704 - an autoescaped template's output
