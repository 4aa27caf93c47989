"""Item use cases shared by the pages and the API: list, create, edit, delete, bulk actions.

Everyone signed in may read every item. Only the owner or an admin may change
one; for anyone else another user's item answers 404, exactly like a missing
one, so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import Row, delete, select, update
from sqlalchemy.orm import Session

from app.core.events import Event, EventBus, EventType
from app.errors import NotFound, ValidationFailed
from app.models.base import utcnow
from app.models.item import ITEM_STATUSES, Item
from app.models.user import User
from app.repositories.base import ListQuery
from app.repositories.items import ItemRepository
from app.services.users import Actor, has_control_chars

MAX_PRICE = Decimal("9999999999.99")
BULK_ACTIONS = ("delete", "activate", "archive", "draft")
_BULK_STATUS = {"activate": "active", "archive": "archived", "draft": "draft"}


def _publish(kind: EventType, actor: Actor, *, subject_id: str | None, **payload: Any) -> None:
    EventBus.get_instance().publish_sync(
        Event(
            type=kind,
            actor_id=actor.user_id,
            ip=actor.ip,
            subject_type="item",
            subject_id=subject_id,
            payload=payload,
        )
    )


class Owned(Protocol):
    """Anything with an owner: an Item, or a row of the items table."""

    @property
    def owner_id(self) -> int | None: ...


def can_change(user: User, item: Owned) -> bool:
    """Owners and admins may change an item; guests never."""
    return user.can_write and (user.is_admin or item.owner_id == user.id)


def clean_item_fields(data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validate name, description, status and price; raise ValidationFailed with messages."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = str(data.get("name") or "").strip()
        if not name:
            errors["name"] = "Enter a name."
        elif len(name) > 200:
            errors["name"] = "Use at most 200 characters."
        elif has_control_chars(name):
            errors["name"] = "Remove the control characters."
        out["name"] = name
    if "description" in data:
        description = str(data.get("description") or "").strip()
        if len(description) > 5000:
            errors["description"] = "Use at most 5,000 characters."
        elif has_control_chars(description, multiline=True):
            errors["description"] = "Remove the control characters."
        out["description"] = description
    if "status" in data or not partial:
        status = str(data.get("status") or "draft")
        if status not in ITEM_STATUSES:
            errors["status"] = f"Status must be one of {', '.join(ITEM_STATUSES)}."
        out["status"] = status
    if "price" in data or not partial:
        price, problem = _parse_price(data.get("price"))
        if problem:
            errors["price"] = problem
        out["price"] = price
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def _parse_price(raw: Any) -> tuple[Decimal | None, str | None]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "Enter a price."
    if isinstance(raw, bool):
        return None, "Enter a price such as 12.50."
    try:
        price = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        return None, "Enter a price such as 12.50."
    if not price.is_finite():
        return None, "Enter a price such as 12.50."
    if price < 0:
        return None, "The price cannot be negative."
    if price > MAX_PRICE:
        return None, "The price is too large."
    if price != price.quantize(Decimal("0.01")):
        return None, "Use at most two decimals."
    return price, None


def get_item(session: Session, item_id: int) -> Item:
    """Any item, for reading."""
    item = ItemRepository(session).get(item_id)
    if item is None:
        raise NotFound("No such item.")
    return item


def get_item_for_change(session: Session, user: User, item_id: int) -> Item:
    """An item this user may change; otherwise 404 whether or not it exists."""
    item = ItemRepository(session).get(item_id)
    if item is None or not can_change(user, item):
        raise NotFound("No such item.")
    return item


def create_item(session: Session, owner: User, data: Mapping[str, Any], *, actor: Actor) -> Item:
    """Create an item owned by `owner`; publishes ITEM_CREATED."""
    fields = clean_item_fields(data, partial=False)
    item = ItemRepository(session).add(Item(owner_id=owner.id, **{"description": "", **fields}))
    _publish(EventType.ITEM_CREATED, actor, subject_id=str(item.id), name=item.name)
    return item


def update_item(session: Session, item: Item, data: Mapping[str, Any], *, actor: Actor) -> Item:
    """Change the given fields; publishes ITEM_UPDATED with the names of changed fields."""
    fields = clean_item_fields(data, partial=True)
    changed = sorted(k for k, v in fields.items() if getattr(item, k) != v)
    if changed:
        ItemRepository(session).update(
            item, {**{k: fields[k] for k in changed}, "updated_at": utcnow()}
        )
        _publish(EventType.ITEM_UPDATED, actor, subject_id=str(item.id), fields=changed)
    return item


def delete_item(session: Session, item: Item, *, actor: Actor) -> None:
    """Delete one item; publishes ITEM_DELETED."""
    item_id, name = item.id, item.name
    ItemRepository(session).delete(item)
    _publish(EventType.ITEM_DELETED, actor, subject_id=str(item_id), name=name)


def list_items(session: Session, query: ListQuery, **kwargs: Any) -> Any:
    """One page of items (see BaseRepository.list for `total` and `seek`)."""
    return ItemRepository(session).list(query, **kwargs)


def _target_ids(
    session: Session, user: User, *, ids: Sequence[int] | None, query: ListQuery | None
) -> Any:
    """A SELECT of the ids a bulk action applies to, restricted to what the user may change."""
    repo = ItemRepository(session)
    stmt = repo.filtered(query).with_only_columns(Item.id) if query is not None else select(Item.id)
    if ids is not None:
        stmt = stmt.where(Item.id.in_(list(ids)))
    if not user.is_admin:
        stmt = stmt.where(Item.owner_id == user.id)
    return stmt.order_by(None)


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
    target = _target_ids(session, user, ids=ids, query=query).scalar_subquery()
    if action == "delete":
        result = session.execute(
            delete(Item).where(Item.id.in_(target)).execution_options(synchronize_session=False)
        )
        kind = EventType.ITEM_DELETED
    else:
        result = session.execute(
            update(Item)
            .where(Item.id.in_(target))
            .values(status=_BULK_STATUS[action], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        kind = EventType.ITEM_UPDATED
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        scope = (
            {"ids": list(ids)[:100]}
            if ids is not None
            else {"q": query.q if query else "", "filters": dict(query.filters) if query else {}}
        )
        _publish(kind, actor, subject_id=None, bulk=True, action=action, count=count, **scope)
    return count


def export_rows(session: Session, query: ListQuery, *, batch: int = 2000) -> Iterator[Row[Any]]:
    """Every item of the filtered, sorted view (plain rows of the export columns), read from
    the database in keyset batches."""
    repo = ItemRepository(session)
    return repo.iterate(query, batch=batch, columns=repo.export_columns())


def owners_by_id(session: Session, owner_ids: Iterable[int]) -> dict[int, str]:
    """Display names of item owners, in one query."""
    ids = sorted(set(owner_ids))
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {uid: name or email for uid, name, email in rows}
