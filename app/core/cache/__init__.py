"""Multi-layer cache: `MemoryCache` (L1, in process) in front of `RedisCache` (L2, shared).

`Cache` is the interface (get, set, delete by key/prefix/tag, get_or_set); `@cached`
decorates sync and async functions; `TwoTierCache` is the Flask extension and
`FlaskCachingBackend` lets Flask-Caching store in the same tiers.
"""

from app.core.cache.config import CacheConfig, build_cache
from app.core.cache.core import DEFAULT_TTL, Cache, CacheStats, Ttl
from app.core.cache.decorator import (
    EXTENSION_KEY,
    CachedFunction,
    active_cache,
    cached,
    set_default_cache,
)
from app.core.cache.extension import FlaskCachingBackend, TwoTierCache, get_cache
from app.core.cache.flight import AsyncSingleFlight, SingleFlight
from app.core.cache.invalidation import (
    Invalidation,
    InvalidationChannel,
    LocalChannel,
    LocalHub,
    RedisChannel,
)
from app.core.cache.keys import UnstableKeyError, canonical
from app.core.cache.memory import Clock, ManualClock, MemoryCache
from app.core.cache.redis_tier import RedisCache, connect, namespace_for
from app.core.cache.serialization import UnsupportedValueError, register_type
from app.core.cache.tiers import FOREVER, CacheTier, Entry

__all__ = [
    "DEFAULT_TTL",
    "EXTENSION_KEY",
    "FOREVER",
    "AsyncSingleFlight",
    "Cache",
    "CacheConfig",
    "CacheStats",
    "CacheTier",
    "CachedFunction",
    "Clock",
    "Entry",
    "FlaskCachingBackend",
    "Invalidation",
    "InvalidationChannel",
    "LocalChannel",
    "LocalHub",
    "ManualClock",
    "MemoryCache",
    "RedisCache",
    "RedisChannel",
    "SingleFlight",
    "Ttl",
    "TwoTierCache",
    "UnstableKeyError",
    "UnsupportedValueError",
    "active_cache",
    "build_cache",
    "cached",
    "canonical",
    "connect",
    "get_cache",
    "namespace_for",
    "register_type",
    "set_default_cache",
]
