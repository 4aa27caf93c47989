"""JSON endpoint for administrators: every account, paged, sorted and searchable."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.api.schemas import UserListParams, UserOut, UserPage, json_response, validate_query
from app.extensions import db
from app.policy import policy
from app.services import users as user_service

bp = Blueprint("api_users", __name__, url_prefix="/users")


@bp.get("")
@policy("admin")
def list_users() -> Response:
    """One page of accounts (admins only)."""
    query = validate_query(UserListParams, request.args).list_query()
    page = user_service.list_users(db.session, query)
    return json_response(
        UserPage(
            items=[UserOut.model_validate(user) for user in page.items],
            page=page.page,
            per_page=page.per_page,
            total=page.total,
            pages=page.pages,
        )
    )
