"""Wire the two-tier cache into the app: one configuration for `@cached` and Flask-Caching.

Which writes drop which cached reads is decided in app/services/invalidation.py.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.core.cache.flask import TwoTierCache, get_cache
from app.settings import Settings


def init_caching(app: Flask, settings: Settings) -> None:
    """Build the app's Cache from its settings (Flask-Caching reads the same CACHE_* keys)."""
    app.config.update(
        CACHE_TYPE="app.core.cache.flask.FlaskCachingBackend",
        CACHE_REDIS_URL=settings.redis_url,
        CACHE_KEY_PREFIX=f"{settings.redis_key_prefix}:cache",
        CACHE_DEFAULT_TTL=settings.cache_default_ttl,
        CACHE_L1_MAX_ENTRIES=settings.cache_l1_max_entries,
        CACHE_L1_LOCAL_BYTES=settings.table_cache_mb * 1024 * 1024,
    )
    TwoTierCache().init_app(app)


def cache_health(app: Flask) -> dict[str, Any]:
    """The cache's view of Redis, for /readyz."""
    return get_cache(app).health()
