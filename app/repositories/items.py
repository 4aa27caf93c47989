"""Data access for items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select

from app.models.item import ITEM_LISTING, Item
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
    """Items, listed as ITEM_LISTING declares."""

    model = Item
    listing = ITEM_LISTING

    def table_columns(self) -> RowsSelect:
        """What a row of the items table shows, with the owner's name joined in."""
        return _TABLE_COLUMNS

    def export_columns(self) -> RowsSelect:
        """The columns of a CSV export, in order."""
        return _EXPORT_COLUMNS

    def table_row(self, item_id: int) -> Row[Any] | None:
        """One row of the items table (to redraw it after an inline edit)."""
        return self.session.execute(self.table_columns().where(Item.id == item_id)).one_or_none()
