"""Rendered table regions, cached: one URL state seen by one kind of viewer is the same HTML
until the data behind it changes.

Building a table region (header, rows, pager, bulk bar) is most of a table page's cost:
a query and a few hundred template expressions. Its HTML is kept in each process's L1
only (`Cache.get_or_set_local`): the keys follow what users type into the URL, so in
Redis they would cost memory per distinct search, and an L1 hit needs no network hop.
Entries carry the tags of the data they show; every ITEM_*/USER_* event and every ORM
write to items or users drops those tags after the commit (app/caching.py), at once in
the writing process and within milliseconds in the others (Redis pub/sub). A short TTL
bounds what a change made outside the app (SQL by hand) can leave on screen. Nothing
per session (the CSRF token, flash messages) is in the cached part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import request
from markupsafe import Markup

from app import get_settings
from app.core.cache import get_cache
from app.web.tables import TableView


class Viewer(Protocol):
    """What decides the row actions a viewer is offered."""

    @property
    def id(self) -> Any: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def can_write(self) -> bool: ...


def viewer_key(user: Viewer) -> str:
    """Viewers who see the same actions share entries: admins, each writer, all readers."""
    if user.is_admin:
        return "admin"
    return f"user:{user.id}" if user.can_write else "reader"


def region_key(view: TableView[Any], viewer: str) -> str:
    """The cache key of a region: table, viewer, mount point and the normalised URL state."""
    state = urlencode(sorted(view.state.params().items()))
    return f"region:{view.spec.region_id}:{viewer}:{request.script_root}:{state}"


def cached_region(
    view: TableView[Any],
    *,
    viewer: str,
    tags: Iterable[str],
    render: Callable[[], str],
) -> Markup:
    """The region's HTML from the cache, or `render()` once and keep it (TABLE_CACHE_TTL
    seconds; 0 renders every time)."""
    ttl = get_settings().table_cache_ttl
    if ttl <= 0:
        return Markup(render())  # noqa: S704 - our own rendered (autoescaped) template output
    html = get_cache().get_or_set_local(
        region_key(view, viewer),
        lambda: str(render()),
        ttl=timedelta(seconds=ttl),
        tags=tuple(tags),
    )
    return Markup(html)  # noqa: S704 - our own rendered (autoescaped) template output
