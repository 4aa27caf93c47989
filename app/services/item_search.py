"""Searched pages of the items table, shown from cached windows of ids.

A search matches rows all over the sort index, so page N of a search (typed, or a page
number in the pager: no cursor) walks the index past every row that does not match: for
a word in 4% of a million items, page 20 tests 12,000 rows (2-3 ms), and sorted by name
against the side where the matches cluster (names that begin with the word) it walks most
of the index, 27-140 ms for any page. The ids of the first pages of one search (term,
filters, sort, direction, page size) are therefore read CHUNK_PAGES pages at a time and
cached under the `items` tag, like the totals (app/services/item_counts.py): every
ITEM_* event drops them. A page is then its rows by primary key, read with the search
and filters applied again, so a row changed or deleted since drops out even before the
invalidation arrives. Pages past CACHED_PAGES and the pager's keyset links (a cursor
seeks from a neighbouring row, which is cheap) query as before.

Only where every process hears of every write (the caller says: with Redis): elsewhere
another worker's write would leave this one's windows stale until they expire.
"""

from __future__ import annotations

from array import array
from datetime import timedelta

from sqlalchemy.orm import Session

from app.core.cache import cached
from app.core.listing import Direction, ListQuery, Page, clamp_page, page_count
from app.repositories.base import TableRow
from app.repositories.items import ItemRepository
from app.services.item_counts import filter_key

CHUNK_PAGES = 5  # pages whose ids one query reads: page 1 reads the ids of pages 1-5
CACHED_PAGES = 20  # deeper pages by number are rare, and each would be its own entry
_ID_TYPE = "i"  # 4-byte ids (an INTEGER key): a window of 500 is 2 KB, not 18 KB of ints


@cached(
    ttl=timedelta(minutes=10), key_prefix="items:search-ids", tags=("items",), ignore=("session",)
)
def _window(
    session: Session,
    term: str,
    filters: tuple[tuple[str, str], ...],
    sort: str,
    direction: Direction,
    per_page: int,
    chunk: int,
) -> bytes:
    query = ListQuery(q=term, filters=dict(filters), sort=sort, direction=direction)
    size = CHUNK_PAGES * per_page
    ids = ItemRepository(session).window_ids(query, limit=size, offset=chunk * size)
    return array(_ID_TYPE, ids).tobytes()


def searched_page(session: Session, query: ListQuery, total: int) -> Page[TableRow] | None:
    """Page `query.page` of a search from the cached ids, or None where it is not cached
    (no search term, or a page past CACHED_PAGES)."""
    term = query.search_term
    page, per_page = clamp_page(query.page, query.per_page)
    if not term or page > CACHED_PAGES:
        return None
    repo = ItemRepository(session)
    pages = page_count(total, per_page)
    shown: list[int] = []
    if page <= pages:  # past the end there is nothing to read, and nothing to keep
        sort, direction = repo.sorting(query.sort, query.direction)
        chunk, at = divmod(page - 1, CHUNK_PAGES)
        # The term in any case shares an entry: the database compares it folded.
        window = _window(session, term.lower(), filter_key(query), sort, direction, per_page, chunk)
        ids = array(_ID_TYPE)
        ids.frombytes(window)
        shown = ids[at * per_page : (at + 1) * per_page].tolist()
    rows = repo.rows_with_ids(repo.table_columns(), query, shown)
    return Page(items=rows, page=min(page, pages), per_page=per_page, total=total)
