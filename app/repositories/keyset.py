"""Keyset ("seek") pagination: deep pages cost the same as the first.

Instead of OFFSET n, a page is fetched relative to the sort key of a row the
user already saw: `WHERE (col, id) > (:v, :id) ORDER BY col, id LIMIT k`. The
(column, id) indexes make that an index range scan wherever the page is.
Small skips (a few pages away) are allowed so page-number links near the
current page stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

SeekKind = Literal["after", "before", "last"]
MAX_SKIP_PAGES = 5


@dataclass(frozen=True)
class Seek:
    """Where a page starts: after or before a row's sort key, or at the end."""

    kind: SeekKind
    key: tuple[Any, ...] = ()
    skip: int = 0


def _cmp(
    column: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    key: tuple[Any, ...],
    *,
    greater: bool,
) -> Any:
    if column is id_col:
        return id_col > key[-1] if greater else id_col < key[-1]
    left, right = tuple_(column, id_col), tuple_(*key)
    return left > right if greater else left < right


def apply_seek(
    stmt: Select[Any],
    seek: Seek,
    *,
    column: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    descending: bool,
    order: list[Any],
    reverse_order: list[Any],
    per_page: int,
    last_page_size: int,
) -> tuple[Select[Any], bool]:
    """The statement for a seek and whether its rows come back reversed."""
    if seek.kind == "last":
        return stmt.order_by(*reverse_order).limit(last_page_size), True
    forward = seek.kind == "after"
    greater = forward != descending  # after in ascending order means "greater than"
    stmt = stmt.where(_cmp(column, id_col, seek.key, greater=greater))
    stmt = stmt.order_by(*(order if forward else reverse_order)).offset(seek.skip).limit(per_page)
    return stmt, not forward
