"""Administration: manage users (role, active, delete)."""

from __future__ import annotations

from flask import Blueprint, Response, flash, request, url_for
from flask_login import current_user

from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.htmx import htmx, render
from app.models.user import ROLES, User
from app.policy import policy
from app.repositories.base import ListQuery, unit_of_work
from app.repositories.users import UserRepository
from app.security import current_actor, current_db_user, end_server_sessions
from app.services import accounts
from app.web.responses import see_other

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _target(user_id: int) -> User:
    user = UserRepository(db.session).get(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() else 1


@bp.get("/users")
@policy("admin")
def users() -> Response:
    """Every account, with role and status controls."""
    page = UserRepository(db.session).list(
        ListQuery(sort="email", page=_page_number(), per_page=25, q=request.args.get("q", ""))
    )
    return render(
        "admin/users.html",
        fragments={"users-table": "users_table"},
        page=page,
        roles=ROLES,
        q=request.args.get("q", ""),
        me=current_user,
    )


@bp.post("/users/<int:user_id>")
@policy("admin")
def update_user(user_id: int) -> Response:
    """Change a user's role or active flag (one row re-rendered)."""
    target = _target(user_id)
    role = request.form.get("role")
    active_raw = request.form.get("is_active")
    is_active = None if active_raw is None else active_raw in ("1", "true", "on")
    error = None
    try:
        with unit_of_work(db.session) as session:
            accounts.admin_update_user(
                session,
                current_db_user(),
                target,
                role=role,
                is_active=is_active,
                actor=current_actor(),
            )
    except ValidationFailed as exc:
        error = "; ".join(exc.fields.values())
        db.session.refresh(target)
    if is_active is False:
        end_server_sessions(target.id)
    if not htmx().request:  # a plain form post (no JavaScript): back to the list
        flash(error or f"Saved {target.email}.", "error" if error else "success")
        return see_other(url_for("admin.users"))
    status = 422 if error else 200
    return render(
        "admin/users.html",
        fragments={f"user-{target.id}": "user_row"},
        status=status,
        user=target,
        roles=ROLES,
        me=current_user,
        row_error=error,
    )


@bp.post("/users/<int:user_id>/delete")
@policy("admin")
def delete_user(user_id: int) -> Response:
    """Delete an account; the row disappears."""
    target = _target(user_id)
    with unit_of_work(db.session) as session:
        accounts.admin_delete_user(session, current_db_user(), target, actor=current_actor())
    end_server_sessions(user_id)
    if not htmx().request:
        flash("The account has been deleted.", "success")
        return see_other(url_for("admin.users"))
    return Response("", status=200)
