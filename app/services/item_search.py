"""Searched pages of the items table, shown from cached windows of ids.

A search matches rows all over the sort index, so page N of a search (typed, or a page
number in the pager: no cursor) walks the index past every row that does not match: for
a word in 4% of a million items, page 20 tests 12,000 rows (2-3 ms), and sorted by name
against the side where the matches cluster (names that begin with the word) it walks most
of the index, 27-140 ms for any page. The ids of the first pages of one search (term,
filters, sort, direction, page size) are therefore read CHUNK_PAGES pages at a time and
cached under the `items` tag, like the totals (app/services/item_counts.py): every
ITEM_* event drops them. A page is then its rows by primary key, which also shows a
rename or a new owner name at once. Pages past CACHED_PAGES and the pager's keyset
links (a cursor seeks from a neighbouring row, which is cheap) query as before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from app.core.cache import cached
from app.core.listing import Direction, ListQuery, Page, clamp_page
from app.repositories.items import ItemRepository

CHUNK_PAGES = 5  # pages whose ids one query reads: page 1 reads the ids of pages 1-5
CACHED_PAGES = 20  # deeper pages by number are rare, and each would be its own entry


@cached(
    ttl=timedelta(minutes=10), key_prefix="items:search-ids", tags=("items",), ignore=("session",)
)
def _chunk_ids(
    session: Session,
    q: str,
    filters: tuple[tuple[str, str], ...],
    sort: str,
    direction: Direction,
    per_page: int,
    chunk: int,
) -> list[int]:
    query = ListQuery(q=q, filters=dict(filters), sort=sort, direction=direction)
    size = CHUNK_PAGES * per_page
    return ItemRepository(session).window_ids(query, limit=size, offset=chunk * size)


def searched_page(session: Session, query: ListQuery, total: int) -> Page[Row[Any]] | None:
    """Page `query.page` of a search from the cached ids, or None where it is not cached
    (no search term, or a page past CACHED_PAGES)."""
    q = query.q.replace("\x00", "").strip()
    page, per_page = clamp_page(query.page, query.per_page)
    if not q or page > CACHED_PAGES:
        return None
    repo = ItemRepository(session)
    sort, direction = repo.sorting(query.sort, query.direction)
    filters = tuple(sorted((k, str(v)) for k, v in query.filters.items() if v not in (None, "")))
    chunk, at = divmod(page - 1, CHUNK_PAGES)
    ids = _chunk_ids(session, q, filters, sort, direction, per_page, chunk)
    shown = ids[at * per_page : (at + 1) * per_page]
    rows = repo.rows_with_ids(repo.table_columns(), shown)
    pages = max(1, -(-total // per_page))
    return Page(items=rows, page=min(page, pages), per_page=per_page, total=total)
