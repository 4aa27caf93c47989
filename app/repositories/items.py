"""Data access for items."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models.item import Item
from app.repositories.base import BaseRepository


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

    def count_all(self) -> int:
        """Number of items."""
        return int(self.session.scalar(select(func.count()).select_from(Item)) or 0)
