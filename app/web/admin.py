"""Administration: manage users (role, active, delete) and read the audit log."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, flash, request, url_for
from flask_login import current_user

from app.errors import ValidationFailed
from app.extensions import db
from app.htmx import htmx, render
from app.models.user import ROLES
from app.policy import policy
from app.security import current_actor, current_db_user, end_server_sessions
from app.services import accounts
from app.services import audit as audit_log
from app.services import users as user_service
from app.web.responses import see_other
from app.web.tables import Column, TableSpec, build_view, current_table_args

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERS = TableSpec(
    endpoint="admin.users",
    region_id="users-table",
    listing=user_service.LISTING,
    columns=(
        Column("email", "Email"),
        Column("name", "Name"),
        Column("role", "Role"),
        Column("created_at", "Joined", first_direction="desc"),
    ),
    filters=("role",),
    nouns=("user", "users"),
)
AUDIT = TableSpec(
    endpoint="admin.audit",
    region_id="audit-table",
    listing=audit_log.LISTING,
    columns=(
        Column("created_at", "When", first_direction="desc"),
        Column("event_type", "Event"),
        Column("actor", "Actor"),
        Column("ip", "IP"),
        Column("subject", "Subject"),
        Column("details", "Details"),
    ),
    filters=("event_type",),
    nouns=("entry", "entries"),
)


@bp.get("/users")
@policy("admin")
def users() -> Response:
    """Every account, with role and status controls."""
    return _users_page(request.args)


def _users_page(args: Mapping[str, str]) -> Response:
    view = build_view(
        USERS, args, lambda query, seek: user_service.list_users(db.session, query, seek)
    )
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
    view = build_view(
        AUDIT, request.args, lambda query, seek: audit_log.list_entries(db.session, query, seek)
    )
    return render(
        "admin/audit.html",
        fragments={"audit-table": "audit_table"},
        view=view,
        event_choices=[(t, t) for t in audit_log.recorded_event_types(db.session)],
    )


@bp.post("/users/<int:user_id>")
@policy("admin")
def update_user(user_id: int) -> Response:
    """Change a user's role or active flag (one row re-rendered)."""
    target = user_service.get_user(db.session, user_id)
    inline = htmx().targets(f"user-{target.id}")  # decided before anything is written
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
    if error is None and is_active is False:  # a refused change ends nobody's sessions
        end_server_sessions(target.id)
    if not inline:  # a plain form post (no JavaScript): back to the list
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
    """Delete an account; htmx gets the table redrawn (rows, count and pager) with a message."""
    target = user_service.get_user(db.session, user_id)
    email = target.email
    with db.transaction() as session:
        accounts.admin_delete_user(session, current_db_user(), target, actor=current_actor())
    end_server_sessions(user_id)
    flash(f"Deleted {email} and everything they owned.", "success")
    if not htmx().request:
        return see_other(url_for("admin.users"))
    response = _users_page(current_table_args())
    response.headers["HX-Retarget"] = "#users-table"
    response.headers["HX-Reswap"] = "outerHTML"
    return response
