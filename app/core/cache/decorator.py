"""`@cached`: transparent caching of a sync or async function, keyed by its name and arguments.

The decorator finds its Cache when called, not when applied: the Cache of the current
scope (each Flask app's, once `app.core.cache.flask` has installed Flask's app context
with `use_scope`), else the process default (`set_default_cache`). So a module-level
function works under every test app, in jobs and in the CLI, and this module needs
no web framework.

A hit costs the key, one read of the scope's context variable and one L1 lookup;
the loader's partial and the tags are only built on a miss.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Collection, Iterable
from contextvars import ContextVar
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast

from app.core.cache.core import Cache, Ttl
from app.core.cache.keys import CallKey

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

Tags = Iterable[str] | Callable[..., Iterable[str]]
"""Fixed tags, or a function of the call's arguments returning them."""


def _no_cache(scope: Any) -> Cache | None:
    return None


_default: Cache | None = None
_scope: ContextVar[Any] = ContextVar("cache_scope")  # never set: no scope until one is installed
_cache_in: Callable[[Any], Cache | None] = _no_cache
_warned_uncached = False
_MISSING: Any = object()


def set_default_cache(cache: Cache | None) -> None:
    """Use `cache` for `@cached` calls made outside any scope that has one (None: no default)."""
    global _default
    _default = cache


def use_scope(scope: ContextVar[Any], cache_in: Callable[[Any], Cache | None]) -> None:
    """While `scope` is set, `@cached` uses `cache_in(scope.get())`, unless that is None."""
    global _scope, _cache_in
    _scope, _cache_in = scope, cache_in


def active_cache() -> Cache | None:
    """Return the current scope's Cache (the app's), else the process default, else None."""
    scope = _scope.get(None)
    found = None if scope is None else _cache_in(scope)
    return _default if found is None else found


class CachedFunction(Protocol, Generic[P, R_co]):
    """A decorated function: call it as before, and drop its cached results when data changes."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the cached result of this call, everywhere."""

    def invalidate_all(self) -> None:
        """Drop the cached results of every call of this function, everywhere."""

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the key this call is cached under."""


def cached(
    ttl: Ttl = None,
    *,
    key_prefix: str = "",
    tags: Tags = (),
    early_ttl: Ttl = None,
    ignore: Collection[str] = ("self", "cls"),
    cache: Cache | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache a function's results for `ttl` (default: the cache's, 1 h) by name and arguments.

    `key_prefix` groups keys for `Cache.delete_prefix`; `tags` (fixed or computed from the
    arguments) group them for `Cache.delete_tag`; `early_ttl` is the age after which one
    caller recomputes while the others keep the current value; parameters in `ignore` are
    left out of the key.
    """

    def decorate(func: Callable[P, R]) -> CachedFunction[P, R]:
        call_key = CallKey(func, key_prefix=key_prefix, ignore=ignore)
        key_of = call_key.key
        tags_of = _tags_builder(tags)

        def target() -> Cache | None:
            found = cache if cache is not None else active_cache()
            if found is None:
                _warn_uncached(call_key.base)
            return found

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                store = target()
                if store is None:
                    return await func(*args, **kwargs)
                key = key_of(args, kwargs)
                value = store.get_l1(key, _MISSING)
                if value is not _MISSING:
                    return value
                load = functools.partial(func, *args, **kwargs)
                return await store.aget_or_set(
                    key, load, ttl=ttl, tags=tags_of(args, kwargs), early_ttl=early_ttl
                )

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                store = cache
                if store is None:  # target(), inline: a call would cost a tenth of a hit
                    scope = _scope.get(None)
                    if scope is not None:
                        store = _cache_in(scope)
                    if store is None:
                        store = _default
                        if store is None:
                            _warn_uncached(call_key.base)
                            return func(*args, **kwargs)
                key = key_of(args, kwargs)
                get_l1 = store.get_l1  # a function attribute: fetched, then called, is cheapest
                value = get_l1(key, _MISSING)
                if value is not _MISSING:
                    return value
                load = functools.partial(func, *args, **kwargs)
                return store.get_or_set(
                    key, load, ttl=ttl, tags=tags_of(args, kwargs), early_ttl=early_ttl
                )

            wrapper = sync_wrapper

        def invalidate(*args: Any, **kwargs: Any) -> None:
            store = target()
            if store is not None:
                store.delete(key_of(args, kwargs))

        def invalidate_all() -> None:
            store = target()
            if store is not None:
                store.delete_prefix(call_key.base + ":")

        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        wrapper.invalidate_all = invalidate_all  # type: ignore[attr-defined]
        wrapper.cache_key = lambda *a, **kw: key_of(a, kw)  # type: ignore[attr-defined]
        return cast(CachedFunction[P, R], wrapper)

    return decorate


def _tags_builder(tags: Tags) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, ...]]:
    if callable(tags):
        computed = tags
        return lambda args, kwargs: tuple(computed(*args, **kwargs))
    fixed = tuple(tags)
    return lambda args, kwargs: fixed


def _warn_uncached(name: str) -> None:
    global _warned_uncached
    if not _warned_uncached:
        _warned_uncached = True
        log.warning("@cached %s ran uncached: no app context and no set_default_cache()", name)
