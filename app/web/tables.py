"""The reusable DataTable: URL state in, a page and its links out.

`TableSpec` declares a table page: its columns and labels over a `Listing` (the
one declaration of what sorts and filters, app/core/listing.py) and the page
that serves it. `TableState.from_args` turns any query string into a safe,
normalised state (unknown sorts, directions, pages and sizes never reach SQL);
`TableState.params` is the one way state becomes URL parameters again.
`TableView` holds the page plus the links the table parts in
app/web/table_html.py draw. Links to nearby pages carry a keyset cursor,
so deep pages stay cheap.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import parse_qsl, quote_plus, urlsplit

from flask import request

from app.core.listing import (
    MAX_PAGE,
    MAX_SEARCH_LENGTH,
    MAX_SKIP_PAGES,
    Direction,
    Listing,
    ListQuery,
    Page,
    Seek,
    opposite,
    sort_key,
)
from app.htmx import htmx
from app.models.base import MAX_ID
from app.templating import path_for
from app.utils.text import has_control_chars

T = TypeVar("T")
_SAFE_PARAMS = frozenset({"sort", "dir", "page", "per_page"})  # allowlisted tokens and numbers
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus(value, safe=".") returns as is
MAX_CURSOR_LENGTH = 512  # a longer cursor is ignored, so links never carry one


@dataclass(frozen=True)
class Column:
    """One column: its key (a listing sort key when it sorts), header label, and look."""

    key: str
    label: str
    numeric: bool = False
    first_direction: Direction = "asc"


@dataclass(frozen=True)
class TableSpec:
    """A table page: which listing it shows, its columns, and which filters it offers."""

    endpoint: str
    region_id: str
    listing: Listing
    columns: tuple[Column, ...]
    filters: tuple[str, ...] = ()
    nouns: tuple[str, str] = ("row", "rows")  # singular and plural, for "1 item", "3 items"

    @property
    def per_page_choices(self) -> tuple[int, ...]:
        return self.listing.per_page_choices

    @property
    def default_per_page(self) -> int:
        return self.listing.default_per_page

    @property
    def max_search_length(self) -> int:
        return MAX_SEARCH_LENGTH

    def sorts(self, column: Column) -> bool:
        """Whether the header of `column` is a sort link."""
        return column.key in self.listing.sortable


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


@dataclass(frozen=True)
class TableState:
    """A normalised table request: always safe to hand to a repository."""

    spec: TableSpec
    sort: str
    direction: Direction
    page: int
    per_page: int
    q: str
    filters: dict[str, str]
    cursor: str = ""

    @classmethod
    def from_args(cls, spec: TableSpec, args: Mapping[str, str]) -> TableState:
        """Parse the URL; anything unknown falls back to the defaults."""
        raw = dict(args.items())  # a plain dict: MultiDict.get raises and catches on every miss
        listing = spec.listing
        sort = raw.get("sort", listing.default_sort)
        if sort not in listing.sortable:
            sort = listing.default_sort
        direction: Direction = "desc" if raw.get("dir") == "desc" else "asc"
        if "dir" not in raw:
            direction = (
                listing.default_direction
                if sort == listing.default_sort
                else _first_direction(spec, sort)
            )
        per_page = _int(raw.get("per_page"), listing.default_per_page)
        if per_page not in listing.per_page_choices:
            per_page = listing.default_per_page
        filters = {
            name: raw[name]
            for name in spec.filters
            if raw.get(name) in listing.filters.get(name, ())
        }
        return cls(
            spec=spec,
            sort=sort,
            direction=direction,
            page=min(max(1, _int(raw.get("page"), 1)), MAX_PAGE),
            per_page=per_page,
            q=raw.get("q", "").strip()[:MAX_SEARCH_LENGTH],
            filters=filters,
            cursor=raw.get("cursor", "")[:MAX_CURSOR_LENGTH],
        )

    def list_query(self) -> ListQuery:
        """The repository query for this state."""
        return ListQuery(
            sort=self.sort,
            direction=self.direction,
            page=self.page,
            per_page=self.per_page,
            q=self.q,
            filters=self.filters,
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """URL parameters for this state with some changed; defaults are left out.

        The one serialiser of table state: links, hidden inputs, the export link and
        the region cache key all come from here, in this order. A page asks for a dozen
        links, so the changes are read from a dict rather than through a copied state
        (`dataclasses.replace` cost more than the rest of this).
        """
        if changes.keys() - _STATE_FIELDS:
            raise TypeError(f"not table state: {sorted(changes.keys() - _STATE_FIELDS)}")
        state = {**self.__dict__, **changes} if changes else self.__dict__
        out: dict[str, Any] = {"sort": state["sort"], "dir": state["direction"]}
        if state["page"] > 1:
            out["page"] = state["page"]
        if state["per_page"] != self.spec.listing.default_per_page:
            out["per_page"] = state["per_page"]
        if state["q"]:
            out["q"] = state["q"]
        out.update({k: v for k, v in state["filters"].items() if v})
        if state["cursor"]:
            out["cursor"] = state["cursor"]
        return out


_STATE_FIELDS = frozenset({"sort", "direction", "page", "per_page", "q", "filters", "cursor"})


def encode_params(params: Mapping[str, Any]) -> str:
    """A query string for `params`; allowlisted tokens and numbers need no quoting, and
    neither does a value made only of characters quoting leaves alone (a cursor)."""
    return "&".join(
        f"{key}={value}"
        if key in _SAFE_PARAMS or _UNQUOTED.fullmatch(text := str(value))
        else f"{key}={quote_plus(text, safe='.')}"
        for key, value in params.items()
    )


def _first_direction(spec: TableSpec, sort: str) -> Direction:
    for column in spec.columns:
        if column.key == sort:
            return column.first_direction
    return "asc"


# --- cursors ---------------------------------------------------------------------------


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


_CURSOR_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps builds one per call


def encode_cursor(kind: str, key: tuple[Any, ...], skip: int = 0) -> str:
    """`a.<key>.<skip>` (after) or `b.<key>.<skip>` (before), URL-safe."""
    raw = _CURSOR_JSON.encode([_encode_value(v) for v in key]).encode()
    return f"{kind[0]}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{skip}"


def cursor_id(raw: Any) -> int:
    """An id from a cursor: an integer a primary key can hold."""
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise ValueError("id out of range")
    return value


def cursor_text(raw: Any) -> str:
    """A text sort value from a cursor: the characters text columns can hold."""
    if not isinstance(raw, str) or has_control_chars(raw, multiline=True):
        raise ValueError("not a text value")
    return raw


def cursor_decimal(raw: Any) -> Decimal:
    """A money sort value from a cursor: finite and within NUMERIC(12,2)."""
    value = Decimal(cursor_text(raw))
    if not value.is_finite() or abs(value) >= 10**10:
        raise ValueError("amount out of range")
    return value


def cursor_datetime(raw: Any) -> datetime:
    """A timestamp sort value from a cursor: with a zone, and representable in UTC."""
    value = datetime.fromisoformat(cursor_text(raw))
    if value.tzinfo is None:
        raise ValueError("timestamp without a zone")
    return value.astimezone(UTC)  # OverflowError near year 1 or 9999


_CURSOR_VALUES: dict[type, Callable[[Any], Any]] = {
    int: cursor_id,
    str: cursor_text,
    Decimal: cursor_decimal,
    datetime: cursor_datetime,
}
"""How a cursor's sort value is checked, by the type the listing declares for the key."""


def decode_cursor(spec: TableSpec, state: TableState) -> Seek | None:
    """The keyset seek a cursor asks for, or None if it is absent or malformed.

    Values are checked here, so a hand-made cursor can never reach SQL with
    something the column cannot compare (an answer of 500 instead of a page).
    """
    if state.cursor == "last":
        return Seek("last")
    try:
        kind, data, skip_raw = state.cursor.split(".")
        values = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        skip = int(skip_raw)
        if kind not in ("a", "b") or not isinstance(values, list) or len(values) != 2:
            return None
        if not 0 <= skip <= MAX_SKIP_PAGES * state.per_page:
            return None
        convert = _CURSOR_VALUES[spec.listing.sortable[state.sort]]
        key = (convert(values[0]), cursor_id(values[1]))
    except (ValueError, TypeError, json.JSONDecodeError, ArithmeticError):
        return None
    return Seek("after" if kind == "a" else "before", key, skip)


# --- the view model ----------------------------------------------------------------------


# The parts below are tuples: a page makes a few dozen, and a frozen dataclass costs three
# times a tuple to build.
class Link(NamedTuple):
    """A pager link: the page number and its URL."""

    page: int
    url: str


class HeaderCell(NamedTuple):
    """One header cell, worked out in Python so the template only prints it."""

    column: Column
    aria_sort: str  # "ascending" | "descending" | "none"
    url: str  # "" for a column that does not sort
    indicator: str


class PagerItem(NamedTuple):
    """One pager control: a link, the current page, a disabled button, or a gap."""

    label: str
    url: str = ""
    rel: str = ""
    aria_label: str = ""
    current: bool = False
    gap: bool = False


class Pager(NamedTuple):
    """First/prev, the numbered window, next/last."""

    before: tuple[PagerItem, ...]
    numbers: tuple[PagerItem, ...]
    after: tuple[PagerItem, ...]


_INDICATORS = {"ascending": "▲", "descending": "▼", "none": "↕"}


@dataclass
class TableView(Generic[T]):
    """A page of rows plus every URL the table macros need.

    The macros only print what is here: a page draws a dozen links, and building
    them in Python (no macro or function calls per link) keeps a table page cheap.
    The page itself is fetched on first use, so a response whose table region
    comes from the cache (app/web/regions.py) runs no query at all.
    """

    spec: TableSpec
    state: TableState
    load: Callable[[ListQuery, Seek | None], Page[Any]]

    @cached_property
    def seek(self) -> Seek | None:
        """Where the cursor in the URL asks the page to start (None: absent or malformed)."""
        return decode_cursor(self.spec, self.state)

    @cached_property
    def page(self) -> Page[Any]:
        """The rows of this state and their total (one query, on first use)."""
        try:
            return self.load(self.state.list_query(), self.seek)
        except AttributeError as exc:
            # Jinja reads an AttributeError from a property as "no such attribute" and
            # would log an UndefinedError about `page`, hiding the real fault.
            raise RuntimeError(f"loading the table page failed: {exc!r}") from exc

    @cached_property
    def base_url(self) -> str:
        """The table's path, resolved once per page (url_for is slow in a loop)."""
        return path_for(self.spec.endpoint)

    def url(self, **changes: Any) -> str:
        """This table's URL with some state changed (see TableState.params)."""
        return f"{self.base_url}?{encode_params(self.state.params(**changes))}"

    @cached_property
    def sort_urls(self) -> dict[str, str]:
        """Every sortable column's link, built once per page."""
        return {c.key: self._sort_url(c) for c in self.spec.columns if self.spec.sorts(c)}

    def _sort_url(self, column: Column) -> str:
        """Clicking a header: same column flips direction; a new column starts at page 1."""
        if column.key == self.state.sort:
            direction: Direction = opposite(self.state.direction)
        else:
            direction = column.first_direction
        sort = encode_params({"sort": column.key, "dir": direction})
        return f"{self.base_url}?{sort}{self._url_parts[1]}"  # url(sort=, direction=, page=1)

    def sort_state(self, column: Column) -> str:
        """aria-sort value for a header cell."""
        if column.key != self.state.sort:
            return "none"
        return "ascending" if self.state.direction == "asc" else "descending"

    @cached_property
    def headers(self) -> list[HeaderCell]:
        """The header row: aria-sort, link and arrow of every column."""
        cells = []
        for column in self.spec.columns:
            aria = self.sort_state(column)
            url = self.sort_urls.get(column.key, "")
            cells.append(HeaderCell(column, aria, url, _INDICATORS[aria]))
        return cells

    @cached_property
    def sortable_headers(self) -> list[HeaderCell]:
        """The sort chips shown on phones, where the header row is hidden."""
        return [cell for cell in self.headers if cell.url]

    def page_link(self, number: int) -> Link:
        """A link to page `number`, by keyset when it is near the current page (and its sort
        value is short enough for a cursor: a long one would be cut, so it is left out)."""
        page = self.page
        current, pages, items = page.page, page.pages, page.items
        if number <= 1:
            return Link(1, self.page_url(1, ""))
        if number >= pages:
            return Link(pages, self.page_url(pages, "last"))
        distance = number - current
        cursor = ""
        if items and 0 < distance <= MAX_SKIP_PAGES + 1:
            cursor = encode_cursor(
                "after", sort_key(items[-1], self.state.sort), (distance - 1) * page.per_page
            )
        elif items and 0 < -distance <= MAX_SKIP_PAGES + 1:
            cursor = encode_cursor(
                "before", sort_key(items[0], self.state.sort), (-distance - 1) * page.per_page
            )
        if len(cursor) > MAX_CURSOR_LENGTH:
            cursor = ""
        return Link(number, self.page_url(number, cursor))

    def page_url(self, number: int, cursor: str) -> str:
        """`url(page=number, cursor=cursor)`, from the parts of this state's URL that page
        links share (a pager draws a dozen links, header and chips a dozen more)."""
        head, tail = self._url_parts
        page = f"&page={number}" if number > 1 else ""
        if not cursor:
            return f"{head}{page}{tail}"
        after = cursor if _UNQUOTED.fullmatch(cursor) else quote_plus(cursor, safe=".")
        return f"{head}{page}{tail}&cursor={after}"

    @cached_property
    def _url_parts(self) -> tuple[str, str]:
        """This state's URL up to its page, and from its page to its cursor (the order of
        TableState.params)."""
        params = self.state.params(page=1, cursor="")
        head = {"sort": params.pop("sort"), "dir": params.pop("dir")}
        tail = encode_params(params)
        return f"{self.base_url}?{encode_params(head)}", f"&{tail}" if tail else ""

    @cached_property
    def window(self) -> list[Link | None]:
        return [self.page_link(n) if n is not None else None for n in self.page.window(2)]

    @cached_property
    def pager(self) -> Pager:
        """Every pager control, in order."""
        page = self.page
        links: dict[int, Link] = {link.page: link for link in self.window if link is not None}

        def to(number: int) -> str:
            found = links.get(number)
            return found.url if found else self.page_link(number).url

        if page.has_prev:
            before = (
                PagerItem("« First", to(1), aria_label="First page"),
                PagerItem("‹ Prev", to(page.page - 1), rel="prev", aria_label="Previous page"),
            )
        else:
            before = (
                PagerItem("« First", aria_label="First page"),
                PagerItem("‹ Prev", aria_label="Previous page"),
            )
        if page.has_next:
            after = (
                PagerItem("Next ›", to(page.page + 1), rel="next", aria_label="Next page"),
                PagerItem("Last »", to(page.pages), aria_label="Last page"),
            )
        else:
            after = (
                PagerItem("Next ›", aria_label="Next page"),
                PagerItem("Last »", aria_label="Last page"),
            )
        numbers = tuple(
            PagerItem("…", gap=True)
            if link is None
            else PagerItem(f"{link.page:,}", current=True, aria_label=f"Page {link.page}")
            if link.page == page.page
            else PagerItem(f"{link.page:,}", link.url, aria_label=f"Page {link.page}")
            for link in self.window
        )
        return Pager(before, numbers, after)

    @cached_property
    def summary(self) -> str:
        """1 item, 3 items, No items, or 1-25 of 1,000 items (an en dash in the text)."""
        page = self.page
        one, many = self.spec.nouns
        if not page.total:
            return f"No {many}"
        if page.pages == 1:
            return f"{page.total:,} {one if page.total == 1 else many}"
        return f"{page.first_index:,}–{page.last_index:,} of {page.total:,} {many}"

    @cached_property
    def scope(self) -> str:
        """What the search and filters select, in words: 'matching “lamp” with status draft'."""
        state = self.state
        parts = [f"matching “{state.q}”"] if state.q else []
        filters = [f"{name.replace('_', ' ')} {value}" for name, value in state.filters.items()]
        if filters:
            parts.append("with " + " and ".join(filters))
        return " ".join(parts)

    @cached_property
    def kept_params(self) -> list[tuple[str, Any]]:
        """The state a page-size change keeps (hidden inputs of that form)."""
        params = self.state.params(page=1, cursor="")
        return [(k, v) for k, v in params.items() if k not in ("per_page", "page")]


def current_table_args() -> Mapping[str, str]:
    """The table state of the page the user is on: htmx sends its URL with a write, so the
    table redrawn after a delete or bulk action shows the same sort, search and page."""
    current = htmx().current_url
    if current:
        return dict(parse_qsl(urlsplit(current).query))
    return request.args


def build_view(
    spec: TableSpec,
    args: Mapping[str, str],
    load: Callable[[ListQuery, Seek | None], Page[Any]],
) -> TableView[Any]:
    """A TableView: the URL parsed now, the page loaded by `load` (a service) on first use."""
    return TableView(spec, TableState.from_args(spec, args), load)
