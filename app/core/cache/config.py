"""Cache settings from the app's config, and the one place a Cache is assembled from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.core.cache.core import DEFAULT_LOCAL_BUDGET, DEFAULT_TTL, Cache
from app.core.cache.invalidation import RedisChannel
from app.core.cache.memory import DEFAULT_MAX_ENTRIES, MemoryCache
from app.core.cache.redis_tier import RedisCache, connect, namespace_for


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """Everything that shapes a Cache; `redis_url=None` is the embedded, L1-only mode."""

    redis_url: str | None = None
    key_prefix: str = "app"
    version: int = 1
    default_ttl: float = DEFAULT_TTL
    l1_max_entries: int = DEFAULT_MAX_ENTRIES
    l1_local_bytes: int = DEFAULT_LOCAL_BUDGET  # of get_or_set_local values (table regions)
    lock_ttl: float = 5.0
    degraded_l1_ttl: float = 10.0
    socket_timeout: float = 0.5
    retry_interval: float = 2.0

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> CacheConfig:
        """Read `CACHE_*` keys (Flask's app.config); absent keys keep their defaults."""
        names = {
            "redis_url": "CACHE_REDIS_URL",
            "key_prefix": "CACHE_KEY_PREFIX",
            "version": "CACHE_VERSION",
            "default_ttl": "CACHE_DEFAULT_TTL",
            "l1_max_entries": "CACHE_L1_MAX_ENTRIES",
            "l1_local_bytes": "CACHE_L1_LOCAL_BYTES",
            "lock_ttl": "CACHE_LOCK_TTL",
            "degraded_l1_ttl": "CACHE_DEGRADED_L1_TTL",
            "socket_timeout": "CACHE_REDIS_SOCKET_TIMEOUT",
            "retry_interval": "CACHE_REDIS_RETRY_INTERVAL",
        }
        found = {field: config[name] for field, name in names.items() if name in config}
        if isinstance(found.get("default_ttl"), timedelta):
            found["default_ttl"] = found["default_ttl"].total_seconds()
        return cls(**found)


def build_cache(config: CacheConfig) -> Cache:
    """Assemble L1, L2 and the invalidation listener (started) as configured."""
    l1 = MemoryCache(max_entries=config.l1_max_entries)
    if not config.redis_url:
        return Cache(l1=l1, default_ttl=config.default_ttl, local_budget=config.l1_local_bytes)
    l2 = RedisCache(
        connect(config.redis_url, socket_timeout=config.socket_timeout),
        namespace=namespace_for(config.key_prefix, config.version),
        retry_interval=config.retry_interval,
    )
    return Cache(
        l1=l1,
        l2=l2,
        channel=RedisChannel(l2, reconnect_interval=min(config.retry_interval, 1.0)),
        default_ttl=config.default_ttl,
        lock_ttl=config.lock_ttl,
        degraded_l1_ttl=config.degraded_l1_ttl,
        local_budget=config.l1_local_bytes,
    )
