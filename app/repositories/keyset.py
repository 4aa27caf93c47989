"""Keyset ("seek") pagination: deep pages cost the same as the first.

Instead of OFFSET n, a page is fetched relative to the sort key of a row the
user already saw: `WHERE (col, id) > (:v, :id) ORDER BY col, id LIMIT k`. The
(column, id) indexes make that an index range scan wherever the page is.
Small skips (a few pages away) are allowed so page-number links near the
current page stay cheap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.listing import Seek, SeekKind


def _cmp(
    column: InstrumentedAttribute[Any], id_col: InstrumentedAttribute[Any], *, greater: bool
) -> Any:
    """`(column, id) > (:seek_value, :seek_id)` (or <), with the values left as parameters."""
    seek_id = bindparam("seek_id", type_=id_col.type)
    if column is id_col:
        return id_col > seek_id if greater else id_col < seek_id
    left = tuple_(column, id_col)
    right = tuple_(bindparam("seek_value", type_=column.type), seek_id)
    return left > right if greater else left < right


def apply_seek(
    stmt: Select[Any],
    kind: SeekKind,
    *,
    column: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    descending: bool,
    order: list[Any],
    reverse_order: list[Any],
) -> tuple[Select[Any], bool]:
    """The statement for a kind of seek and whether its rows come back reversed.

    Values stay bound parameters (see `seek_params`), so one statement serves
    every page of a given shape and SQLAlchemy compiles it once.
    """
    if kind == "last":
        return stmt.order_by(*reverse_order).limit(bindparam("limit")), True
    forward = kind == "after"
    greater = forward != descending  # after in ascending order means "greater than"
    stmt = stmt.where(_cmp(column, id_col, greater=greater))
    stmt = stmt.order_by(*(order if forward else reverse_order))
    return stmt.offset(bindparam("offset")).limit(bindparam("limit")), not forward


def seek_params(seek: Seek, *, per_page: int, last_page_size: int) -> dict[str, Any]:
    """The parameter values for a statement from `apply_seek`."""
    if seek.kind == "last":
        return {"limit": last_page_size}
    params: dict[str, Any] = {"seek_id": seek.key[-1], "offset": seek.skip, "limit": per_page}
    if len(seek.key) > 1:
        params["seek_value"] = seek.key[0]
    return params
