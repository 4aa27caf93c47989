"""Flask wiring, the one module of the cache that imports Flask: one Cache per app, found by
`@cached` inside that app's context, and a Flask-Caching backend on top of it.

`TwoTierCache().init_app(app)` builds the app's Cache; `flask_caching.Cache` with
`CACHE_TYPE="app.core.cache.flask.FlaskCachingBackend"` then stores into that same
Cache, so `cache.cached()`, `cache.memoize()` and `@cached` share tiers, keys
namespace and invalidation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app
from flask import globals as flask_globals
from flask.ctx import AppContext
from flask_caching import CachedResponse
from flask_caching.backends.base import BaseCache

from app.core.cache.config import CacheConfig, build_cache
from app.core.cache.core import Cache
from app.core.cache.decorator import use_scope
from app.core.cache.serialization import register_builtin
from app.core.cache.tiers import FOREVER

EXTENSION_KEY = "app_cache"
"""Where `init_app` keeps the app's Cache (Flask-Caching owns `app.extensions["cache"]`)."""


class TwoTierCache:
    """The Flask extension: `init_app` builds the app's Cache and keeps it in app.extensions."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> Cache:
        """Build (once) and return this app's Cache, configured by its `CACHE_*` keys."""
        # Flask's context variable, not the current_app proxy: @cached reads it on every call.
        use_scope(flask_globals._cv_app, _cache_of_context)
        existing = app.extensions.get(EXTENSION_KEY)
        if isinstance(existing, Cache):
            return existing
        cache = build_cache(CacheConfig.from_mapping(app.config))
        app.extensions[EXTENSION_KEY] = cache
        return cache


def get_cache(app: Flask | None = None) -> Cache:
    """Return the Cache of `app` (default: the current app)."""
    target = app if app is not None else current_app
    found = target.extensions.get(EXTENSION_KEY)
    if not isinstance(found, Cache):
        raise RuntimeError("no cache on this app: call TwoTierCache().init_app(app) in create_app")
    return found


def _cache_of_context(context: AppContext) -> Cache | None:
    found = context.app.extensions.get(EXTENSION_KEY)
    return found if isinstance(found, Cache) else None


class FlaskCachingBackend(BaseCache):
    """A Flask-Caching backend storing in the app's two-tier Cache (no pickle, shared L1)."""

    def __init__(self, cache: Cache, default_timeout: float | None = None) -> None:
        super().__init__(default_timeout=0)
        self.cache = cache
        self._default_ttl = default_timeout

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> FlaskCachingBackend:
        """Called by flask_caching.Cache.init_app: reuse (or build) the app's Cache."""
        _register_responses()
        # One configuration: CACHE_DEFAULT_TTL rules unless the app set Flask-Caching's own key.
        explicit = "CACHE_DEFAULT_TIMEOUT" in app.config
        return cls(TwoTierCache().init_app(app), kwargs["default_timeout"] if explicit else None)

    def get(self, key: str) -> Any:
        return self.cache.get(key)

    def has(self, key: str) -> bool:
        sentinel = object()
        return self.cache.get(key, sentinel) is not sentinel

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        self.cache.set(key, value, ttl=self._ttl(timeout))
        return True

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        return self.cache.add(key, value, ttl=self._ttl(timeout))

    def delete(self, key: str) -> bool:
        self.cache.delete(key)
        return True

    def delete_many(self, *keys: str) -> list[Any]:
        self.cache.delete(*keys)
        return list(keys)

    def clear(self) -> bool:
        self.cache.clear()
        return True

    def _ttl(self, timeout: int | timedelta | None) -> float | None:
        """Flask-Caching's timeouts: None is the default, 0 (or less) is never."""
        if timeout is None:
            return self._default_ttl
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        return FOREVER if seconds <= 0 else seconds


def _register_responses() -> None:
    """Let views cached by Flask-Caching return Response objects (encoded as plain parts)."""
    register_builtin(Response, 30, _response_parts, _response_from_parts)
    register_builtin(CachedResponse, 29, _response_parts, _response_from_parts)


def _response_parts(response: Response) -> list[Any]:
    return [response.get_data(), response.status_code, list(response.headers.items())]


def _response_from_parts(parts: list[Any]) -> Response:
    body, status, headers = parts
    return Response(body, status=status, headers=[tuple(h) for h in headers])
