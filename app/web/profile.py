"""The signed-in user's profile: view, inline edit, password, sessions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, request, url_for
from flask_login import current_user

from app.errors import Conflict, Forbidden, ValidationFailed
from app.extensions import db
from app.htmx import render
from app.models.user import User
from app.policy import policy
from app.security import (
    client_ip,
    current_actor,
    current_db_user,
    end_server_sessions,
    sign_in,
    sign_out,
)
from app.services import accounts
from app.settings import get_settings
from app.web.responses import see_other

bp = Blueprint("profile", __name__, url_prefix="/profile")

FRAGMENTS = {"profile-card": "profile_card", "password-form": "password_form"}


def _me() -> User:
    return current_db_user()


def _page(*, status: int = 200, out_of_band: tuple[str, ...] = (), **context: Any) -> Response:
    defaults: dict[str, Any] = {
        "editing": False,
        "values": {},
        "errors": {},
        "password_errors": {},
        "password_saved": False,
        "saved": False,
    }
    if "user" not in context:
        defaults["user"] = _me()
    return render(
        "profile/index.html",
        fragments=FRAGMENTS,
        out_of_band=out_of_band,
        status=status,
        **{**defaults, **context},
    )


@bp.get("")
@policy("read")
def show() -> Response:
    """The profile card and the password form.

    Shown from the signed-in identity this request already loaded (the cached snapshot
    every USER_* event drops), not a second read of the row: only changes need the row.
    """
    return _page(user=current_user._get_current_object())


@bp.get("/edit")
@policy("write")
def edit() -> Response:
    """The card turned into a form (inline edit)."""
    user = _me()
    return _page(editing=True, values={"name": user.name, "email": user.email})


@bp.post("")
@policy("write")
def update() -> Response:
    """Save name and email; any other submitted field (role, active, id) is ignored.

    A new email also needs the current password (see accounts.update_profile); its
    field is `email_password`, as the password card on the same page has its own.
    """
    allowed = {k: request.form[k] for k in ("name", "email") if k in request.form}
    try:
        with db.transaction() as session:
            accounts.update_profile(
                session,
                _me(),
                allowed,
                actor=current_actor(),
                current_password=request.form.get("email_password"),
            )
    except (ValidationFailed, Conflict, Forbidden) as exc:  # each names its field
        errors = dict(exc.fields)
        if "current_password" in errors:
            errors["email_password"] = errors.pop("current_password")
        return _page(status=422, editing=True, values=allowed, errors=errors)
    user = _me()
    return _page(saved=True, user=user, nav_user=user, out_of_band=("nav_user",))


@bp.post("/password")
@policy("write")
def change_password() -> Response:
    """Change the password; every other session and token of the user ends."""
    form = request.form
    user = _me()
    try:
        with db.transaction() as session:
            accounts.change_password(
                session,
                user,
                current=form.get("current_password", ""),
                new=form.get("new_password", ""),
                confirm=form.get("confirm_password", ""),
                iterations=get_settings().password_hash_iterations,
                actor=current_actor(),
            )
    except ValidationFailed as exc:
        return _page(status=422, password_errors=exc.fields)
    end_server_sessions(user.id)
    sign_in(user, remember=False)  # this browser continues under the new epoch
    return _page(password_saved=True)


@bp.post("/sessions/end")
@policy("session")
def end_sessions() -> Response:
    """Sign out everywhere: every browser, remember-me cookie and API token."""
    user = _me()
    with db.transaction() as session:
        accounts.end_all_sessions(session, user)
        accounts.record_logout(session, user, ip=client_ip(), everywhere=True)
    end_server_sessions(user.id)
    sign_out()
    flash("You have been signed out on every device.", "info")
    return see_other(url_for("auth.login"))
