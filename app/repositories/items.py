"""Data access for items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select

from app.models.item import Item
from app.models.user import User
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
_TABLE_COLUMNS: RowsSelect = select(
    *_FIELDS, User.name.label("owner_name"), User.email.label("owner_email")
).outerjoin(User, User.id == Item.owner_id)
# What a CSV export carries: every column, as plain rows (no ORM loading for a million rows).
_EXPORT_COLUMNS: RowsSelect = select(*_FIELDS, Item.description)


class ItemRepository(BaseRepository[Item]):
    """Items with the sort allowlist the items table offers."""

    model = Item
    sortable = {
        "id": Item.id,
        "name": Item.name,
        "price": Item.price,
        "status": Item.status,
        "created_at": Item.created_at,
        "updated_at": Item.updated_at,
    }
    searchable = (Item.name,)  # trigram-indexed on PostgreSQL (migration 0003)
    filterable = {"status": Item.status, "owner_id": Item.owner_id}
    default_sort = "id"

    def table_columns(self) -> RowsSelect:
        """What a row of the items table shows, with the owner's name joined in."""
        return _TABLE_COLUMNS

    def export_columns(self) -> RowsSelect:
        """The columns of a CSV export, in order."""
        return _EXPORT_COLUMNS

    def table_row(self, item_id: int) -> Row[Any] | None:
        """One row of the items table (to redraw it after an inline edit)."""
        return self.session.execute(self.table_columns().where(Item.id == item_id)).one_or_none()

    def count_all(self) -> int:
        """Number of items."""
        return int(self.session.scalar(select(func.count()).select_from(Item)) or 0)
