"""BaseRepository[T]: CRUD, query building and pagination over one model.

Repositories flush but never commit; whoever owns the work (a view, a CLI
command, a job) wraps it in `db.transaction()`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from sqlalchemy import Row, Select, String, bindparam, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.listing import (
    Direction,
    Listing,
    ListQuery,
    Page,
    Seek,
    clamp_page,
    opposite,
    page_count,
    sort_key,
)
from app.core.sql import read_connection
from app.models.base import Base
from app.repositories.driver_reads import fetch_rows
from app.repositories.keyset import apply_seek, seek_params

T = TypeVar("T", bound=Base)
R = TypeVar("R")
RowsSelect: TypeAlias = Select[*tuple[Any, ...]]  # a select of any number of columns
TableRow: TypeAlias = Any
"""A row of a RowsSelect: its columns by attribute (`row.id`) and by position; a named
tuple when read through the driver (app/repositories/driver_reads.py), else a Row."""


class QueryError(ValueError):
    """A list query asked for something the repository does not allow."""


class UnknownSortError(QueryError):
    """Sorting by a column that is not on the allowlist."""


# Page statements by shape (see BaseRepository._shaped); a few per table in practice.
_SHAPES: dict[tuple[Any, ...], tuple[Select[Any], Select[Any], bool]] = {}
_MAX_SHAPES = 4096  # far above what the tables can ask for; a safety valve
_BASE_SELECTS: dict[type[Any], Select[Any]] = {}


class BaseRepository(Generic[T]):
    """Data access for one model. Subclasses name the model and its `Listing`; the
    columns that sort, filter and search follow from the listing's names."""

    model: ClassVar[type[Any]]
    listing: ClassVar[Listing]
    sortable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]]
    searchable: ClassVar[Sequence[InstrumentedAttribute[Any]]]
    filterable: ClassVar[Mapping[str, InstrumentedAttribute[Any]]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        listing = cls.listing
        cls.sortable = {name: getattr(cls.model, name) for name in listing.sortable}
        cls.searchable = tuple(getattr(cls.model, name) for name in listing.search)
        cls.filterable = {name: getattr(cls.model, name) for name in listing.filters}

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- CRUD ---------------------------------------------------------------

    def get(self, id_: int) -> T | None:
        """The row with this primary key, or None."""
        obj: T | None = self.session.get(self.model, id_)
        return obj

    def add(self, obj: T) -> T:
        """Stage a new row and flush so it gets its id (no commit)."""
        self.session.add(obj)
        self.session.flush()
        return obj

    def add_all(self, objs: Sequence[T]) -> list[T]:
        """Stage several rows in one flush."""
        self.session.add_all(objs)
        self.session.flush()
        return list(objs)

    def update(self, obj: T, values: Mapping[str, Any]) -> T:
        """Set mapped attributes from `values` and flush; unknown names are refused."""
        columns = self.model.__mapper__.columns.keys()
        unknown = set(values) - set(columns)
        if unknown:
            raise QueryError(f"unknown field(s) for {self.model.__name__}: {sorted(unknown)}")
        for key, value in values.items():
            setattr(obj, key, value)
        self.session.flush()
        return obj

    def delete(self, obj: T) -> None:
        """Remove the row (flushed, not committed)."""
        self.session.delete(obj)
        self.session.flush()

    # --- querying -----------------------------------------------------------

    def base_select(self) -> Select[Any]:
        """The unfiltered statement; subclasses add joins or options here.

        Built once per class for pages (their statements are cached), so it must
        not depend on the instance: scope rows with filters, not here.
        """
        return select(self.model)

    def filtered(self, query: ListQuery, base: Select[Any] | None = None) -> Select[Any]:
        """Apply declared filters and the search term to `base` (default: base_select)."""
        stmt = self._conditions(self.base_select() if base is None else base, query)
        return stmt.params(self._filter_params(query))

    def _conditions(self, stmt: Select[Any], query: ListQuery) -> Select[Any]:
        """WHERE clauses for the query's filters and search, values left as the parameters
        `_filter_params` names (so cached page statements can share them)."""
        for name in self._active_filters(query):
            stmt = stmt.where(self.filterable[name] == bindparam(f"filter_{name}"))
        if query.search_term and self.searchable:
            pattern = bindparam("search", type_=String())
            if self.listing.search_folded:
                matches = [col.like(func.lower(pattern), escape="\\") for col in self.searchable]
            else:
                matches = [col.ilike(pattern, escape="\\") for col in self.searchable]
            stmt = stmt.where(or_(*matches))
        return stmt

    def order_by(self, sort: str | None, direction: Direction | None) -> list[Any]:
        """ORDER BY terms for an allowlisted column plus `id` as a stable tie-breaker."""
        name, direction = self.sorting(sort, direction)
        if name not in self.sortable:
            raise UnknownSortError(f"cannot sort {self.model.__name__} by {name!r}")
        if direction not in ("asc", "desc"):
            raise QueryError(f"sort direction must be 'asc' or 'desc', not {direction!r}")
        column = self.sortable[name]
        id_col = self.model.id
        if direction == "desc":
            return [column.desc(), id_col.desc()] if name != "id" else [id_col.desc()]
        return [column.asc(), id_col.asc()] if name != "id" else [id_col.asc()]

    def sorting(self, sort: str | None, direction: Direction | None) -> tuple[str, Direction]:
        """The sort key and direction a query means; left out, the listing's defaults."""
        listing = self.listing
        name = sort or listing.default_sort
        if direction is None:
            direction = listing.default_direction if name == listing.default_sort else "asc"
        return name, direction

    def count(self, query: ListQuery) -> int:
        """How many rows match the filters and search."""
        stmt = self.filtered(query).order_by(None)
        total = self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        return int(total or 0)

    def list(
        self, query: ListQuery, *, total: int | None = None, seek: Seek | None = None
    ) -> Page[T]:
        """One sorted page of model objects; pass `total` when the caller knows it (cached).

        With `seek`, the page is fetched by keyset from a neighbouring row's sort
        key (see keyset.py) instead of by OFFSET, so deep pages stay cheap.
        """
        return self._page(
            self._base(), query, total, seek, lambda s, p: list(self.session.scalars(s, p))
        )

    def iterate(
        self, query: ListQuery, *, batch: int = 2000, columns: RowsSelect | None = None
    ) -> Iterator[Any]:
        """Every row of the filtered, sorted query, fetched in keyset batches.

        Model objects, or plain rows of `columns` (a long-lived select, as for
        list_rows). Memory stays flat however many rows match, and nothing is held
        open between batches: no server-side cursor and no long transaction (safe
        requests read in autocommit, where PostgreSQL cannot keep a cursor).
        Sortable columns are NOT NULL, so the batches meet exactly.
        """
        sort, _ = self.sorting(query.sort, query.direction)
        if columns is None:
            base, fetch = self._base(), self.session.scalars
        else:
            base, fetch = columns, self.session.connection().execute  # type: ignore[assignment]
        params = self._filter_params(query)
        first, _ = self._shaped(base, query, None)
        after, _ = self._shaped(base, query, "after")
        rows = list(fetch(first, {**params, "limit": batch, "offset": 0}))
        while rows:
            yield from rows
            if len(rows) < batch:
                return
            seek = Seek("after", sort_key(rows[-1], sort))
            page = seek_params(seek, per_page=batch, last_page_size=batch)
            rows = list(fetch(after, {**params, **page}))

    def _base(self) -> Select[Any]:
        base = _BASE_SELECTS.get(type(self))
        if base is None:  # one object per class, so its page statements can be cached
            base = _BASE_SELECTS[type(self)] = self.base_select()
        return base

    def list_rows(
        self,
        columns: RowsSelect,
        query: ListQuery,
        *,
        total: int | None = None,
        seek: Seek | None = None,
    ) -> Page[TableRow]:
        """Like `list`, but only `columns` (a select, joins allowed) as plain rows.

        A table page shows a few fields: plain rows skip the ORM's loading and
        let one query bring related names along. Pass a long-lived select (a
        module constant): page statements are cached per shape of that select, and
        read through the driver where it can (app/repositories/driver_reads.py).
        """
        return self._page(columns, query, total, seek, self._fetch_rows)

    def _fetch_rows(self, statement: Select[Any], params: dict[str, Any]) -> builtins.list[Any]:
        with read_connection(self.session) as connection:
            return fetch_rows(connection, statement, params)

    def window_ids(self, query: ListQuery, *, limit: int, offset: int) -> builtins.list[int]:
        """The ids at positions offset .. offset+limit-1 of the filtered, sorted query: what
        a caller keeps to show several pages of a costly query by primary key."""
        sort, direction = self.sorting(query.sort, query.direction)
        filters, searching = self._where_shape(query)
        key = (type(self), "ids", sort, direction, filters, searching)
        cached = _SHAPES.get(key)
        if cached is None:
            stmt = self._conditions(select(self.model.id), query)
            stmt = stmt.order_by(*self.order_by(sort, direction))
            stmt = stmt.limit(bindparam("limit")).offset(bindparam("offset"))
            cached = _remember(key, stmt, stmt)
        params = {**self._filter_params(query), "limit": limit, "offset": offset}
        with read_connection(self.session) as connection:
            return builtins.list(connection.execute(cached[1], params).scalars())

    def rows_with_ids(
        self, columns: RowsSelect, query: ListQuery, ids: Sequence[int]
    ) -> builtins.list[Row[Any]]:
        """Rows of `columns` (a long-lived select, as for list_rows) for `ids`, in that
        order, that still match the query's filters and search: ids kept from an earlier
        read leave out a row deleted or changed since."""
        if not ids:
            return []
        filters, searching = self._where_shape(query)
        key = (type(self), "by-ids", id(columns), filters, searching)
        cached = _SHAPES.get(key)
        if cached is None or cached[0] is not columns:
            stmt = self._conditions(columns, query)
            stmt = stmt.where(self.model.id.in_(bindparam("ids", expanding=True)))
            cached = _remember(key, columns, stmt)
        params = {**self._filter_params(query), "ids": builtins.list(ids)}
        with read_connection(self.session) as connection:
            by_id = {row.id: row for row in connection.execute(cached[1], params)}
        return [by_id[i] for i in ids if i in by_id]

    def _page(
        self,
        base: Select[Any],
        query: ListQuery,
        total: int | None,
        seek: Seek | None,
        fetch: Callable[[Select[Any], dict[str, Any]], builtins.list[R]],
    ) -> Page[R]:
        page, per_page = clamp_page(query.page, query.per_page)
        if total is None:
            total = self.count(query)
        pages = page_count(total, per_page)
        skips = seek.skip > 0 if seek is not None else page > 1
        stmt, reversed_rows = self._shaped(base, query, seek.kind if seek else None, skips=skips)
        params = self._filter_params(query)
        if seek is None:
            params.update(limit=per_page, offset=(page - 1) * per_page)
        else:
            if seek.kind == "last":
                page = pages
            last_page_size = total - (pages - 1) * per_page
            params.update(seek_params(seek, per_page=per_page, last_page_size=last_page_size))
        items = fetch(stmt, params)
        if reversed_rows:
            items.reverse()
        return Page(items=items, page=min(page, pages), per_page=per_page, total=total)

    def _active_filters(self, query: ListQuery) -> tuple[str, ...]:
        """The filters that narrow the query (a value given), in a stable order."""
        for name in query.filters:
            if name not in self.filterable:
                raise QueryError(f"cannot filter {self.model.__name__} by {name!r}")
        return tuple(sorted(n for n, v in query.filters.items() if v is not None and v != ""))

    def _where_shape(self, query: ListQuery) -> tuple[tuple[str, ...], bool]:
        """What a statement's WHERE clause depends on (its values are parameters): the
        active filters, and whether it searches."""
        return self._active_filters(query), bool(query.search_term and self.searchable)

    def _filter_params(self, query: ListQuery) -> dict[str, Any]:
        params = {f"filter_{n}": query.filters[n] for n in self._active_filters(query)}
        term = query.search_term
        if term and self.searchable:
            params["search"] = f"%{_escape_like(term)}%"
        return params

    def _shaped(
        self, base: Select[Any], query: ListQuery, seek_kind: str | None, *, skips: bool = False
    ) -> tuple[Select[Any], bool]:
        """The page statement for this shape of query, values left as bound parameters.

        Built once per shape (base, sort, direction, filters, search or not, seek
        kind, rows skipped or not) and reused: SQLAlchemy then skips building,
        cache-keying and compiling it on every request.
        """
        sort, direction = self.sorting(query.sort, query.direction)
        filters, searching = self._where_shape(query)
        key = (type(self), id(base), sort, direction, filters, searching, seek_kind, skips)
        cached = _SHAPES.get(key)
        if cached is not None and cached[0] is base:
            return cached[1], cached[2]
        order = self.order_by(sort, direction)
        # A page that searches or skips rows (OFFSET) picks its ids alone first (a
        # "deferred join"): the sort index, which carries the searched column, yields them
        # by index-only scan, and the table is visited for the page's rows only, not for
        # every row tested or skipped (page 20 by OFFSET: 0.4 ms instead of 1.5-40 ms).
        deferred = searching or skips
        picked = select(self.model.id) if deferred else base
        stmt = self._conditions(picked, query)
        if seek_kind is None:
            shaped = stmt.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
            reversed_rows = False
        else:
            shaped, reversed_rows = apply_seek(
                stmt,
                seek_kind,  # type: ignore[arg-type]
                column=self.sortable[sort],
                id_col=self.model.id,
                descending=direction == "desc",
                order=order,
                reverse_order=self.order_by(sort, opposite(direction)),
            )
        if deferred:
            ids = shaped.subquery("page_ids")
            outer = self.order_by(sort, opposite(direction)) if reversed_rows else order
            shaped = base.join(ids, self.model.id == ids.c.id).order_by(*outer)
        _remember(key, base, shaped, reversed_rows)
        return shaped, reversed_rows

    def count_all(self) -> int:
        """Number of rows, unfiltered."""
        return int(self.session.scalar(select(func.count()).select_from(self.model)) or 0)


def _remember(
    key: tuple[Any, ...], base: Select[Any], shaped: Select[Any], reversed_rows: bool = False
) -> tuple[Select[Any], Select[Any], bool]:
    """Keep a built statement for its shape; holding `base` keeps the id in its key unique."""
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
    entry = _SHAPES[key] = (base, shaped, reversed_rows)
    return entry


def _escape_like(term: str) -> str:
    """Make %, _ and \\ in a search term match themselves."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
