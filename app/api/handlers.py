"""JSON endpoints for the React client: the signed-in user's own record."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_login import current_user
from pydantic import ValidationError

from app.api.errors import json_body, validation_problem
from app.api.schemas import ProfilePatch, UserOut
from app.extensions import db
from app.policy import policy
from app.repositories.base import unit_of_work
from app.security import current_actor, current_db_user
from app.services import accounts

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
    try:
        patch = ProfilePatch.model_validate(json_body())
    except ValidationError as exc:
        return validation_problem(exc)
    with unit_of_work(db.session) as session:
        user = accounts.update_profile(
            session,
            current_db_user(),
            patch.model_dump(exclude_unset=True, exclude={"current_password"}),
            actor=current_actor(),
            current_password=patch.current_password,
        )
    return jsonify(UserOut.model_validate(user).model_dump(mode="json"))
