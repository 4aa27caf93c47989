"""Item use cases shared by the pages and the API: list, create, edit, delete, bulk actions.

Everyone signed in may read every item. Only the owner or an admin may change
one; for anyone else another user's item answers 404, exactly like a missing
one, so ids reveal nothing. Pages and the API validate an item with the same
schemas (`ItemCreate`, `ItemPatch`), so both doors accept and refuse the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Row
from sqlalchemy.orm import Session

from app.core.events import Actor, EventType, publish
from app.core.listing import ListQuery, Page, Seek
from app.errors import NotFound, ValidationFailed
from app.models.base import MAX_ID, utcnow
from app.models.item import (
    ITEM_LISTING,
    ITEM_STATUSES,
    MAX_DESCRIPTION,
    MAX_NAME,
    Item,
    ItemStatus,
)
from app.models.user import User
from app.repositories.base import TableRow as TableRow  # what a table page's rows are
from app.repositories.items import ItemRepository
from app.services.item_counts import count_items
from app.services.item_search import searched_page
from app.services.validation import OneOf, PatchModel, Price, StrictModel, Text

LISTING = ITEM_LISTING
PRICE_PATTERN = r"^\d{1,10}\.\d{2}$"
BULK_ACTIONS = ("delete", "activate", "archive", "draft")
_BULK_STATUS = {"activate": "active", "archive": "archived", "draft": "draft"}

Name = Annotated[str, Text(MAX_NAME, required="Enter a name.")]
Description = Annotated[str, Text(MAX_DESCRIPTION, multiline=True)]
Status = Annotated[str, OneOf(ITEM_STATUSES, label="Status")]


class ItemCreate(StrictModel):
    """A new item; the owner is whoever creates it. id, owner_id and timestamps are refused."""

    name: Name
    description: Description = ""
    status: Status = "draft"
    price: Price


class ItemPatch(PatchModel):
    """Change some fields of an item; leave out what stays the same."""

    name: Name | None = None
    description: Description | None = None
    status: Status | None = None
    price: Price | None = None


class ItemOut(BaseModel):
    """An item as the API answers and webhooks send it; `price` is a string with exactly
    two decimals ("12.50") so no float rounds it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    name: str
    description: str
    status: ItemStatus
    price: str = Field(pattern=PRICE_PATTERN, examples=["12.50"])
    created_at: datetime
    updated_at: datetime

    @field_validator("price", mode="before")
    @classmethod
    def _two_places(cls, value: Any) -> Any:
        return f"{Decimal(value):.2f}" if isinstance(value, Decimal | int | float) else value


class Owned(Protocol):
    """Anything with an owner: an Item, or a row of the items table."""

    @property
    def owner_id(self) -> int | None: ...


class OwnedRow(Owned, Protocol):
    """A row of the items table: an owner and an id."""

    @property
    def id(self) -> int: ...


def can_change(user: User, item: Owned) -> bool:
    """Owners and admins may change an item; guests never."""
    return user.can_write and (user.is_admin or item.owner_id == user.id)


def changeable_ids(user: User, rows: Iterable[OwnedRow]) -> set[int]:
    """The ids of the rows `user` may change: `can_change` for a page of rows, with the
    user's role read once instead of once per row."""
    if not user.can_write:
        return set()
    if user.is_admin:
        return {row.id for row in rows}
    me = user.id
    return {row.id for row in rows if row.owner_id == me}


def get_item(session: Session, item_id: int) -> Item:
    """Any item, for reading."""
    item = ItemRepository(session).get(item_id) if known_id(item_id) else None
    if item is None:
        raise NotFound("No such item.")
    return item


def get_item_for_change(session: Session, user: User, item_id: int) -> Item:
    """An item this user may change; otherwise 404 whether or not it exists."""
    item = ItemRepository(session).get(item_id) if known_id(item_id) else None
    if item is None or not can_change(user, item):
        raise NotFound("No such item.")
    return item


def create_item(session: Session, owner: User, fields: ItemCreate, *, actor: Actor) -> Item:
    """Create an item owned by `owner`; publishes ITEM_CREATED."""
    item = ItemRepository(session).add(Item(owner_id=owner.id, **fields.model_dump()))
    publish(session, EventType.ITEM_CREATED, subject=("item", item.id), actor=actor, name=item.name)
    return item


def update_item(session: Session, item: Item, changes: ItemPatch, *, actor: Actor) -> Item:
    """Change the given fields; publishes ITEM_UPDATED with the names of changed fields."""
    fields = changes.model_dump(exclude_unset=True)
    changed = sorted(k for k, v in fields.items() if getattr(item, k) != v)
    if changed:
        ItemRepository(session).update(
            item, {**{k: fields[k] for k in changed}, "updated_at": utcnow()}
        )
        publish(
            session, EventType.ITEM_UPDATED, subject=("item", item.id), actor=actor, fields=changed
        )
    return item


def delete_item(session: Session, item: Item, *, actor: Actor) -> None:
    """Delete one item; publishes ITEM_DELETED."""
    item_id, name = item.id, item.name
    ItemRepository(session).delete(item)
    publish(session, EventType.ITEM_DELETED, subject=("item", item_id), actor=actor, name=name)


def list_items(session: Session, query: ListQuery) -> Page[Item]:
    """One page of items, the total from the cache."""
    return ItemRepository(session).list(query, total=count_items(session, query))


def table_page(
    session: Session, query: ListQuery, seek: Seek | None, *, shared_cache: bool = False
) -> Page[TableRow]:
    """One page of the items table: plain rows with owner names, the total from the cache.

    With `shared_cache` (every process hears of every write), a searched page by number
    comes from cached ids (app/services/item_search.py).
    """
    total = count_items(session, query)
    if shared_cache and seek is None:
        found = searched_page(session, query, total)
        if found is not None:
            return found
    repo = ItemRepository(session)
    return repo.list_rows(repo.table_columns(), query, total=total, seek=seek)


def table_row(session: Session, item_id: int) -> Row[Any]:
    """One row of the items table (to redraw it after an inline edit)."""
    found = ItemRepository(session).table_row(item_id) if known_id(item_id) else None
    if found is None:
        raise NotFound("No such item.")
    return found


def count_changeable(session: Session, user: User, query: ListQuery) -> int:
    """How many items matching `query` this user may change (what "All matching" acts on)."""
    if user.is_admin:
        return count_items(session, query)
    if not user.can_write:
        return 0
    return count_items(session, query, owner_id=user.id)


def bulk_action(
    session: Session,
    user: User,
    action: str,
    *,
    ids: Sequence[int] | None = None,
    query: ListQuery | None = None,
    actor: Actor,
) -> int:
    """Apply an action to the selected ids, or to everything matching `query`; returns the count.

    Rows the user may not change are silently left out (they count as not found).
    """
    if action not in BULK_ACTIONS:
        raise ValidationFailed(fields={"action": f"Choose one of {', '.join(BULK_ACTIONS)}."})
    if ids is None and query is None:
        raise ValidationFailed(fields={"ids": "Select at least one item."})
    if ids is not None:
        ids = [i for i in ids if known_id(i)]
    repo = ItemRepository(session)
    owner_id = None if user.is_admin else user.id  # others' rows are left out, as if missing
    if action == "delete":
        count = repo.delete_matching(query, ids=ids, owner_id=owner_id)
        kind = EventType.ITEM_DELETED
    else:
        count = repo.set_status_matching(
            _BULK_STATUS[action], query, ids=ids, owner_id=owner_id, now=utcnow()
        )
        kind = EventType.ITEM_UPDATED
    if count:
        scope = (
            {"ids": list(ids)[:100]}
            if ids is not None
            else {"q": query.q if query else "", "filters": dict(query.filters) if query else {}}
        )
        publish(
            session,
            kind,
            subject=("item", None),
            actor=actor,
            bulk=True,
            action=action,
            count=count,
            **scope,
        )
    return count


def export_rows(session: Session, query: ListQuery, *, batch: int = 2000) -> Iterator[Row[Any]]:
    """Every item of the filtered, sorted view (plain rows of the export columns), read from
    the database in keyset batches."""
    repo = ItemRepository(session)
    return repo.iterate(query, batch=batch, columns=repo.export_columns())


def known_id(item_id: int) -> bool:
    """Whether an id fits the INTEGER key; others are answered like a missing row."""
    return 1 <= item_id <= MAX_ID
