"""How many items match a table query, cached.

Counting a million rows on every page view is the slow part of a table, so
totals are cached in the two-tier cache under the `items` tag, which every
ITEM_* event drops (app/services/invalidation.py). Searches are cached for less time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.core.cache import cached
from app.core.listing import ListQuery
from app.repositories.items import ItemRepository


@cached(ttl=timedelta(minutes=10), key_prefix="items:count", tags=("items",), ignore=("session",))
def _count(
    session: Session, q: str, filters: tuple[tuple[str, str], ...], owner_id: int | None
) -> int:
    query = ListQuery(q=q, filters=dict(filters))
    if owner_id is None:
        return ItemRepository(session).count(query)
    return ItemRepository(session).count_matching(query, owner_id=owner_id)


def count_items(session: Session, query: ListQuery, *, owner_id: int | None = None) -> int:
    """The number of items matching the query's search and filters (of one owner if given).

    A plain user's table offers "All N of your items": uncached, that count scans
    every row they own on each first render.
    """
    return _count(session, query.q.strip().lower(), filter_key(query), owner_id)


def filter_key(query: ListQuery) -> tuple[tuple[str, str], ...]:
    """The query's filters as part of a cache key: set ones only, in a stable order."""
    return tuple(sorted((k, str(v)) for k, v in query.filters.items() if v not in (None, "")))
