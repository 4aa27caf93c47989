"""JSON endpoints for items: the same list semantics and ownership rules as the items pages.

Everyone signed in reads every item; owners and admins change them. Another
user's item answers 404 on PATCH and DELETE, exactly like a missing id.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from app.api.schemas import (
    ItemEntry,
    ItemListParams,
    ItemPage,
    json_response,
    validate_body,
    validate_query,
)
from app.core.listing import Page
from app.extensions import db
from app.models.item import Item
from app.policy import policy
from app.security import current_actor, current_db_user
from app.services import items as item_service
from app.services import users as user_service
from app.services.items import ItemCreate, ItemOut, ItemPatch

bp = Blueprint("api_items", __name__, url_prefix="/items")

ITEM_URL = "/<int:item_id>"


def item_page(page: Page[Item]) -> ItemPage:
    """The API shape of one page of items, each with its owner's name (one query)."""
    names = user_service.display_names(db.session, {item.owner_id for item in page.items})
    return ItemPage(
        items=[
            ItemEntry(
                **ItemOut.model_validate(item).model_dump(), owner_name=names.get(item.owner_id)
            )
            for item in page.items
        ],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
    )


@bp.get("")
@policy("read")
def list_items() -> Response:
    """One page of items; bad sort, dir, page or per_page answer 400 before any SQL."""
    query = validate_query(ItemListParams, request.args).list_query()
    return json_response(item_page(item_service.list_items(db.session, query)))


@bp.post("")
@policy("write")
def create_item() -> Response:
    """Create an item owned by the caller; 201 with its Location."""
    fields = validate_body(ItemCreate)
    with db.transaction() as session:
        item = item_service.create_item(session, current_db_user(), fields, actor=current_actor())
    response = json_response(ItemOut.model_validate(item), status=201)
    response.headers["Location"] = url_for(".get_item", item_id=item.id)
    return response


@bp.get(ITEM_URL)
@policy("read")
def get_item(item_id: int) -> Response:
    """Any item, for reading."""
    return json_response(ItemOut.model_validate(item_service.get_item(db.session, item_id)))


@bp.patch(ITEM_URL)
@policy("write")
def update_item(item_id: int) -> Response:
    """Change some fields of an item the caller owns (admins: any item)."""
    changes = validate_body(ItemPatch)
    with db.transaction() as session:
        item = item_service.get_item_for_change(session, current_db_user(), item_id)
        item_service.update_item(session, item, changes, actor=current_actor())
    return json_response(ItemOut.model_validate(item))


@bp.delete(ITEM_URL)
@policy("write")
def delete_item(item_id: int) -> Response:
    """Delete an item the caller owns (admins: any item); 204."""
    with db.transaction() as session:
        item = item_service.get_item_for_change(session, current_db_user(), item_id)
        item_service.delete_item(session, item, actor=current_actor())
    return Response(status=204)
