"""JSON endpoint for administrators: every account, paged, sorted and searchable."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.api.schemas import UserListParams, UserOut, UserPage, json_response, validate_query
from app.extensions import db
from app.policy import policy
from app.repositories.base import ListQuery
from app.repositories.users import UserRepository

bp = Blueprint("api_users", __name__, url_prefix="/users")


def list_query(params: UserListParams) -> ListQuery:
    """The repository query for validated list parameters (filters only when given)."""
    filters = {"role": params.role, "is_active": params.is_active}
    return ListQuery(
        sort=params.sort,
        direction=params.direction,
        page=params.page,
        per_page=params.per_page,
        q=params.q,
        filters={name: value for name, value in filters.items() if value is not None},
    )


@bp.get("")
@policy("admin")
def list_users() -> Response:
    """One page of accounts (admins only)."""
    page = UserRepository(db.session).list(list_query(validate_query(UserListParams, request.args)))
    return json_response(
        UserPage(
            items=[UserOut.model_validate(user) for user in page.items],
            page=page.page,
            per_page=page.per_page,
            total=page.total,
            pages=page.pages,
        )
    )
