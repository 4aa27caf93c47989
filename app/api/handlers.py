"""JSON endpoints for the React client: the signed-in user's own record."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_login import current_user

from app.api.auth import new_sign_in
from app.api.schemas import PasswordChange, ProfilePatch, UserOut, validate_body
from app.extensions import db
from app.policy import policy
from app.security import current_actor, current_db_user, end_server_sessions
from app.services import accounts
from app.settings import get_settings

bp = Blueprint("api_handlers", __name__)


@bp.get("/me")
@policy("read")
def me() -> Response:
    """The signed-in user."""
    return jsonify(UserOut.model_validate(current_user).model_dump(mode="json"))


@bp.patch("/me")
@policy("write")
def update_me() -> Response:
    """Change name or email (a new email needs current_password); role, is_active, id and
    unknown fields answer 422."""
    patch = validate_body(ProfilePatch)
    with db.transaction() as session:
        user = accounts.update_profile(
            session,
            current_db_user(),
            patch.model_dump(exclude_unset=True, exclude={"current_password"}),
            actor=current_actor(),
            current_password=patch.current_password,
        )
    return jsonify(UserOut.model_validate(user).model_dump(mode="json"))


@bp.post("/me/password")
@policy("write")
def change_password() -> Response:
    """Change the password: every session and token of the account ends (the old refresh
    cookie's sign-in too), and this client carries on with a new token and cookie."""
    body = validate_body(PasswordChange)
    with db.transaction() as session:
        user = current_db_user()
        accounts.change_password(
            session,
            user,
            current=body.current_password,
            new=body.new_password,
            confirm=body.confirm_password,
            iterations=get_settings().password_hash_iterations,
            actor=current_actor(),
        )
    end_server_sessions(user.id)
    return new_sign_in(user)
