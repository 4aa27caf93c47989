"""Rendered table regions, cached: one URL state seen by one kind of viewer is the same HTML
until the data behind it changes.

Building a table region (header, rows, pager, bulk bar) is most of a table page's cost:
a query and a few hundred template expressions. Its HTML is kept in each process's L1
only (`Cache.get_or_set_local`, TABLE_CACHE_MB per process): the keys follow what users
type into the URL, so in Redis they would cost memory per distinct search, and an L1 hit
needs no network hop.
Entries carry the tags of the data they show (`items`, `user-names`); writes drop those
tags after the commit (app/services/invalidation.py), at once in the writing process and within
milliseconds in the others (Redis pub/sub), which is why the cache is off by default
without Redis (Settings.table_cache_seconds). A short TTL bounds what a change made
outside the app (SQL by hand) can leave on screen. Nothing per session (the CSRF
token, flash messages) is in the cached part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import request
from markupsafe import Markup

from app.core.cache.flask import get_cache
from app.core.sql import SAFE_METHODS
from app.settings import get_settings
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
    """Viewers who see the same actions share entries: admins, each writer, all readers.

    Anything else a region might one day show per person (a time zone, a locale) must
    join this key, or one person's rendering would be served to another.
    """
    if user.is_admin:
        return "admin"
    return f"user:{user.id}" if user.can_write else "reader"


def region_key(view: TableView[Any], viewer: str) -> str:
    """The cache key of a region: table, viewer, mount point and the normalised URL state.

    The cursor counts by where it seeks, not how it is spelled: a malformed one shows the
    same page as none, so it shares that entry instead of making a new one.
    """
    params = view.state.params(cursor="")
    seek = view.seek
    if seek is not None:
        params["seek"] = f"{seek.kind}{seek.key!r}{seek.skip}"
    state = urlencode(sorted(params.items()))
    return f"region:{view.spec.region_id}:{viewer}:{request.script_root}:{state}"


def cached_region(
    view: TableView[Any],
    *,
    viewer: str,
    tags: Iterable[str],
    render: Callable[[], str],
) -> Markup:
    """The region's HTML from the cache, or `render()` once and keep it.

    Kept for TABLE_CACHE_TTL seconds (0: render every time). The answer to a write (a
    delete, a bulk action) is always rendered, so it shows that write even while an
    older render is still in flight.
    """
    ttl = get_settings().table_cache_seconds
    if ttl <= 0 or request.method not in SAFE_METHODS:
        return Markup(render())  # noqa: S704 - our own rendered (autoescaped) template output
    html = get_cache().get_or_set_local(
        region_key(view, viewer), lambda: str(render()), ttl=timedelta(seconds=ttl), tags=tags
    )
    return Markup(html)  # noqa: S704 - our own rendered (autoescaped) template output
