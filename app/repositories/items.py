"""Data access for items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, func, select, update

from app.core.listing import ListQuery
from app.models.item import ITEM_LISTING, Item
from app.repositories.base import BaseRepository, RowsSelect

# Built once: statements are immutable, and filters, order and limit make new ones.
_FIELDS = (
    Item.id,
    Item.name,
    Item.status,
    Item.price,
    Item.owner_id,
    Item.created_at,
    Item.updated_at,
)
# A table row: the item's own columns. Owners' names come from their own cache
# (app/services/users.py, display_names): joined in, they cost PostgreSQL more CPU per
# page than the rows did (planning the join again on every execution).
_TABLE_COLUMNS: RowsSelect = select(*_FIELDS)
# What a CSV export carries: every column, as plain rows (no ORM loading for a million rows).
_EXPORT_COLUMNS: RowsSelect = select(*_FIELDS, Item.description)


class ItemRepository(BaseRepository[Item]):
    """Items, listed as ITEM_LISTING declares."""

    model = Item
    listing = ITEM_LISTING

    def table_columns(self) -> RowsSelect:
        """What a row of the items table shows of the item (its owner as an id)."""
        return _TABLE_COLUMNS

    def export_columns(self) -> RowsSelect:
        """The columns of a CSV export, in order."""
        return _EXPORT_COLUMNS

    def _matching_ids(
        self, query: ListQuery | None, *, ids: Sequence[int] | None, owner_id: int | None
    ) -> Select[Any]:
        """The ids of items matching `query` (or all), among `ids`, owned by `owner_id`."""
        stmt = self.filtered(query).with_only_columns(Item.id) if query else select(Item.id)
        if ids is not None:
            stmt = stmt.where(Item.id.in_(list(ids)))
        if owner_id is not None:
            stmt = stmt.where(Item.owner_id == owner_id)
        return stmt.order_by(None)

    def count_matching(self, query: ListQuery, *, owner_id: int | None = None) -> int:
        """How many items match `query` (and belong to `owner_id` when given)."""
        ids = self._matching_ids(query, ids=None, owner_id=owner_id).subquery()
        return int(self.session.scalar(select(func.count()).select_from(ids)) or 0)

    def delete_matching(
        self, query: ListQuery | None, *, ids: Sequence[int] | None, owner_id: int | None
    ) -> int:
        """Delete in one statement (no rows loaded); returns how many went."""
        target = self._matching_ids(query, ids=ids, owner_id=owner_id).scalar_subquery()
        stmt = delete(Item).where(Item.id.in_(target))
        return _rowcount(self.session.execute(stmt.execution_options(synchronize_session=False)))

    def set_status_matching(
        self,
        status: str,
        query: ListQuery | None,
        *,
        ids: Sequence[int] | None,
        owner_id: int | None,
        now: datetime,
    ) -> int:
        """Set the status of matching items in one statement; returns how many changed."""
        target = self._matching_ids(query, ids=ids, owner_id=owner_id).scalar_subquery()
        stmt = update(Item).where(Item.id.in_(target)).values(status=status, updated_at=now)
        return _rowcount(self.session.execute(stmt.execution_options(synchronize_session=False)))

    def table_row(self, item_id: int) -> Row[Any] | None:
        """One row of the items table (to redraw it after an inline edit)."""
        return self.session.execute(self.table_columns().where(Item.id == item_id)).one_or_none()


def _rowcount(result: Any) -> int:
    """Rows a bulk UPDATE or DELETE touched."""
    return int(result.rowcount or 0)
