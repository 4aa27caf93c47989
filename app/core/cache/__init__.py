"""Multi-layer cache: `MemoryCache` (L1, in process) in front of `RedisCache` (L2, shared).

`Cache` is the interface (get, set, delete by key/prefix/tag, get_or_set); `@cached`
decorates sync and async functions. Nothing imported here imports Flask: the Flask
extension (`TwoTierCache`, `get_cache`) and the Flask-Caching backend live in
`app.core.cache.flask`, imported by the app's edge.
"""

from app.core.cache.config import CacheConfig, build_cache
from app.core.cache.core import Cache
from app.core.cache.decorator import CachedFunction, active_cache, cached, set_default_cache
from app.core.cache.invalidation import LocalHub
from app.core.cache.keys import UnstableKeyError, canonical
from app.core.cache.memory import ManualClock, MemoryCache
from app.core.cache.redis_tier import RedisCache, connect, namespace_for
from app.core.cache.serialization import UnsupportedValueError, register_type
from app.core.cache.tiers import FOREVER, Entry

__all__ = [
    "FOREVER",
    "Cache",
    "CacheConfig",
    "CachedFunction",
    "Entry",
    "LocalHub",
    "ManualClock",
    "MemoryCache",
    "RedisCache",
    "UnstableKeyError",
    "UnsupportedValueError",
    "active_cache",
    "build_cache",
    "cached",
    "canonical",
    "connect",
    "namespace_for",
    "register_type",
    "set_default_cache",
]
