"""Administration: manage users (role, active, delete) and read the audit log."""

from __future__ import annotations

from flask import Blueprint, Response, flash, request, url_for
from flask_login import current_user

from app.core.events import EventType
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.htmx import htmx, render
from app.models.user import ROLES, User
from app.policy import policy
from app.repositories.audit import AuditRepository
from app.repositories.users import UserRepository
from app.security import current_actor, current_db_user, end_server_sessions
from app.services import accounts
from app.web.responses import see_other
from app.web.tables import Column, TableSpec, build_view, cursor_datetime

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _target(user_id: int) -> User:
    user = UserRepository(db.session).get(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


USERS = TableSpec(
    endpoint="admin.users",
    region_id="users-table",
    columns=(
        Column("email", "Email", sortable=True),
        Column("name", "Name", sortable=True),
        Column("role", "Role", sortable=True),
        Column("created_at", "Joined", sortable=True, first_direction="desc"),
    ),
    default_sort="email",
    filters={"role": ROLES},
    sort_types={"created_at": cursor_datetime},
)
AUDIT = TableSpec(
    endpoint="admin.audit",
    region_id="audit-table",
    columns=(
        Column("created_at", "When", sortable=True, first_direction="desc"),
        Column("event_type", "Event", sortable=True),
        Column("actor", "Actor"),
        Column("ip", "IP"),
        Column("subject", "Subject"),
        Column("details", "Details"),
    ),
    default_sort="created_at",
    default_direction="desc",
    filters={"event_type": tuple(t.value for t in EventType)},
    sort_types={"created_at": cursor_datetime},
)


@bp.get("/users")
@policy("admin")
def users() -> Response:
    """Every account, with role and status controls."""
    view = build_view(USERS, request.args, UserRepository(db.session))
    return render(
        "admin/users.html",
        fragments={"users-table": "users_table"},
        view=view,
        roles=ROLES,
        role_choices=[(r, r.title()) for r in ROLES],
        me=current_user,
    )


@bp.get("/audit")
@policy("admin")
def audit() -> Response:
    """The audit log, newest first, filterable by event type and searchable by actor."""
    view = build_view(AUDIT, request.args, AuditRepository(db.session))
    return render(
        "admin/audit.html",
        fragments={"audit-table": "audit_table"},
        view=view,
        event_choices=[(t.value, t.value) for t in EventType],
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
        with db.transaction() as session:
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
    with db.transaction() as session:
        accounts.admin_delete_user(session, current_db_user(), target, actor=current_actor())
    end_server_sessions(user_id)
    if not htmx().request:
        flash("The account has been deleted.", "success")
        return see_other(url_for("admin.users"))
    return Response("", status=200)
