"""What a list offers and what one page of it holds: the contract tables, repositories
and the API share.

A `Listing` is declared once per model (beside it in app/models/) and read by the
repository (which columns sort, filter and search), by the HTMX table (which
headers are links, the defaults of its URL state, how a cursor decodes) and by
the API (the query schema and its OpenAPI document). `ListQuery` is one request
for a page of it, `Seek` a keyset position, `Page` the answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

R = TypeVar("R")
Direction = Literal["asc", "desc"]
SeekKind = Literal["after", "before", "last"]

PER_PAGE_CHOICES: tuple[int, ...] = (10, 25, 50, 100)
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_PAGE = 10_000_000  # far past any real table, and far from overflowing an SQL OFFSET
MAX_SEARCH_LENGTH = 100  # characters of a search term, in the table's box and the API
MAX_SKIP_PAGES = 5  # how far a keyset link may jump past the row it starts from


def opposite(direction: Direction) -> Direction:
    """The other direction: a header clicked again, a page read backwards."""
    return "asc" if direction == "desc" else "desc"


@dataclass(frozen=True, kw_only=True)
class Listing:
    """The one declaration of a list: what sorts (and the type of its values), what
    filters (and the values allowed), what a search looks at, and the defaults."""

    sortable: Mapping[str, type]  # key -> Python type of its values; "id" is always one
    default_sort: str
    default_direction: Direction = "asc"
    filters: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    search: tuple[str, ...] = ()  # columns a search term is matched against
    search_folded: bool = False  # they hold lower(text): matched by LIKE lower(term)
    per_page_choices: tuple[int, ...] = PER_PAGE_CHOICES
    default_per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        if "id" not in self.sortable or self.default_sort not in self.sortable:
            raise ValueError("a listing sorts by id and by its default sort")
        if self.default_per_page not in self.per_page_choices:
            raise ValueError("the default page size must be one of the choices")


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    """What a table asks for: sort, direction, page, page size, search and filters."""

    sort: str | None = None  # None: the listing's default sort
    direction: Direction | None = None  # None: the default sort's direction, else ascending
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    q: str = ""
    filters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def search_term(self) -> str:
        """The search term as SQL sees it (NUL cannot occur in PostgreSQL text, so it is
        dropped)."""
        return self.q.replace("\x00", "").strip()


@dataclass(frozen=True)
class Seek:
    """Where a page starts: after or before a row's sort key, or at the end."""

    kind: SeekKind
    key: tuple[Any, ...] = ()
    skip: int = 0


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of results (model objects or plain rows) plus what a pager needs."""

    items: list[R]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1, so an empty table still has page 1)."""
        return page_count(self.total, self.per_page)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        """1-based position of the first row shown (0 when there are none)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.items) - 1 if self.items else 0

    def window(self, size: int = 2) -> list[int | None]:
        """Page numbers around the current one, with None where numbers are skipped."""
        shown = {1, self.pages, *range(self.page - size, self.page + size + 1)}
        numbers = sorted(n for n in shown if 1 <= n <= self.pages)
        out: list[int | None] = []
        for prev, n in zip([0, *numbers], numbers, strict=False):
            if n - prev > 1:
                out.append(None)
            out.append(n)
        return out


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` rows fill (at least 1, so an empty table still has page 1)."""
    return max(1, math.ceil(total / per_page))


def clamp_page(page: int, per_page: int) -> tuple[int, int]:
    """Keep page within 1..MAX_PAGE and per_page within 1..MAX_PER_PAGE."""
    return min(max(1, page), MAX_PAGE), min(max(1, per_page), MAX_PER_PAGE)


def sort_key(row: Any, sort: str) -> tuple[Any, ...]:
    """The (sort value, id) of a row, for keyset links to its neighbours."""
    return (getattr(row, sort), row.id)
