"""L2: values shared by every instance through Redis, namespaced by prefix and version.

When Redis stops answering the tier says so once, answers like an empty cache
and stops asking for `retry_interval` seconds; the first call that gets through
again marks it up and tells the Cache (which flushes L1 and replays the
invalidations it could not deliver).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.core.cache import metrics
from app.core.cache.serialization import UnsupportedValueError, dumps, loads
from app.core.cache.tiers import Clock, Entry, TierName

log = logging.getLogger(__name__)

DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
_FORMAT = 1
_BATCH = 500
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def namespace_for(key_prefix: str, version: int) -> str:
    """Return the namespace every key of this app and cache format lives under."""
    return f"{key_prefix}:v{version}"


def connect(url: str, *, socket_timeout: float = 0.5) -> redis.Redis:
    """Return a pooled client that fails fast (a cache must never be slower than its loader)."""
    pool = redis.ConnectionPool.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),  # one retry heals a pooled socket Redis closed
    )
    return redis.Redis(connection_pool=pool)


class RedisCache:
    """The real shared tier: msgpack values under `<namespace>:`, tags and locks beside them."""

    name: TierName = "l2"

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        retry_interval: float = 2.0,
        wall_clock: Clock = time.time,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self._prefix = f"{namespace}:"
        self._retry_interval = retry_interval
        self._wall = wall_clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._state_lock = threading.Lock()
        self._recover_callbacks: list[Callable[[], None]] = []
        self._release = client.register_script(_RELEASE_LOCK)
        metrics.REDIS_UP.set(1)

    @property
    def available(self) -> bool:
        """Whether Redis answered the last call."""
        return self._down_since is None

    def on_recover(self, callback: Callable[[], None]) -> None:
        """Call `callback` once each time Redis answers again after being down."""
        self._recover_callbacks.append(callback)

    def get_entry(self, key: str) -> Entry | None:
        """Return the live entry for `key`, or None (also when Redis is down)."""
        if self._skipping():
            return None
        raw: Any = None
        with self._guard():
            raw = self.client.get(self._prefix + key)
        return None if raw is None else self._decode(key, raw)

    def set_entry(self, key: str, entry: Entry) -> None:
        """Store `entry`; raise `UnsupportedValueError` for a value msgpack cannot carry."""
        data = self._encode(entry)
        if self._skipping():
            return
        with self._guard():
            if not entry.tags:
                self.client.set(self._prefix + key, data, px=_millis(entry.ttl))
                return
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self._prefix + key, data, px=_millis(entry.ttl))
            self._index_tags(pipe, key, entry)
            pipe.execute()

    def add_entry(self, key: str, entry: Entry) -> bool:
        """Store `entry` only if `key` is absent (SET NX)."""
        data = self._encode(entry)
        if self._skipping():
            return False
        added: Any = False
        with self._guard():
            added = self.client.set(self._prefix + key, data, px=_millis(entry.ttl), nx=True)
            if added and entry.tags:
                pipe = self.client.pipeline(transaction=False)
                self._index_tags(pipe, key, entry)
                pipe.execute()
        return bool(added)

    def delete(self, keys: Collection[str]) -> None:
        """Drop these keys (UNLINK: freed off the Redis main thread)."""
        self._unlink(self._prefix + key for key in keys)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (SCAN: fine for admin, use tags on hot paths)."""
        self._unlink_matching(self._prefix + _glob_escape(prefix) + "*")

    def delete_tag(self, tag: str) -> list[str]:
        """Drop every key stored under `tag` and the tag's index; return the keys."""
        if self._skipping():
            return []
        keys: list[str] = []
        with self._guard():
            members = self.client.sscan_iter(self._tag_key(tag), count=_BATCH)
            keys = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        self._unlink([*(self._prefix + key for key in keys), self._tag_key(tag)])
        return keys

    def clear(self) -> None:
        """Drop every value and tag index of this namespace (never FLUSHDB: Redis is shared)."""
        self._unlink_matching(self._prefix + "*")
        self._unlink_matching(_glob_escape(self.namespace) + "#tag:*")

    def try_lock(self, key: str, ttl: float) -> str | None:
        """SET NX a short lock; a token, or None while held (an unreachable Redis never blocks)."""
        token = uuid.uuid4().hex
        if self._skipping():
            return token
        taken: Any = True
        with self._guard():
            taken = self.client.set(self._lock_key(key), token, nx=True, px=_millis(ttl))
        return token if taken else None

    def release_lock(self, key: str, token: str) -> None:
        """Delete the lock only if `token` still owns it (it may have expired and moved on)."""
        if self._skipping():
            return
        with self._guard():
            self._release(keys=[self._lock_key(key)], args=[token])

    def is_locked(self, key: str) -> bool:
        """Whether the load lock for `key` is held."""
        if self._skipping():
            return False
        held: Any = 0
        with self._guard():
            held = self.client.exists(self._lock_key(key))
        return bool(held)

    def publish(self, channel: str, payload: bytes) -> bool:
        """PUBLISH on `channel`; return whether Redis took it."""
        if self._skipping():
            return False
        with self._guard() as guard:
            self.client.publish(channel, payload)
        return not guard.failed

    def close(self) -> None:
        """Close the pool's connections."""
        self.client.close()
        self.client.connection_pool.disconnect()

    def _encode(self, entry: Entry) -> bytes:
        now = self._wall()
        expires = 0 if math.isinf(entry.ttl) else int((now + entry.ttl) * 1000)
        refresh = 0 if math.isinf(entry.refresh_in) else int((now + entry.refresh_in) * 1000)
        return dumps([_FORMAT, expires, refresh, list(entry.tags), entry.value])

    def _decode(self, key: str, raw: bytes) -> Entry | None:
        try:
            fmt, expires, refresh, tags, value = loads(raw)
        except (ValueError, TypeError, UnsupportedValueError) as exc:
            metrics.L2_ERRORS.inc()
            log.warning("cache L2: unreadable value for %r treated as a miss: %s", key, exc)
            return None
        if fmt != _FORMAT:
            return None
        now = self._wall()
        ttl = math.inf if not expires else expires / 1000 - now
        if ttl <= 0:
            return None
        refresh_in = math.inf if not refresh else refresh / 1000 - now
        return Entry(value, ttl, refresh_in, tuple(tags))

    def _index_tags(self, pipe: Any, key: str, entry: Entry) -> None:
        for tag in entry.tags:
            tag_key = self._tag_key(tag)
            pipe.sadd(tag_key, key)
            if math.isinf(entry.ttl):
                pipe.persist(tag_key)
            else:  # the index lives as long as its longest-lived member
                pipe.pexpire(tag_key, _millis(entry.ttl), nx=True)
                pipe.pexpire(tag_key, _millis(entry.ttl), gt=True)

    def _unlink(self, full_keys: Iterable[str]) -> None:
        if self._skipping():
            return
        with self._guard():
            for batch in _batches(full_keys):
                self.client.unlink(*batch)

    def _unlink_matching(self, pattern: str) -> None:
        if self._skipping():
            return
        with self._guard():
            for batch in _batches(self.client.scan_iter(match=pattern, count=_BATCH)):
                self.client.unlink(*batch)

    def _tag_key(self, tag: str) -> str:
        return f"{self.namespace}#tag:{tag}"

    def _lock_key(self, key: str) -> str:
        return f"{self.namespace}#lock:{key}"

    def _guard(self) -> _Guard:
        return _Guard(self)

    def _skipping(self) -> bool:
        """True while Redis is down and it is not yet time to try again (one caller probes)."""
        if self._down_since is None:
            return False
        now = time.monotonic()
        with self._state_lock:
            if now < self._retry_at:
                return True
            self._retry_at = now + self._retry_interval
        return False

    def _went_down(self, exc: BaseException) -> None:
        metrics.L2_ERRORS.inc()
        with self._state_lock:
            self._retry_at = time.monotonic() + self._retry_interval
            if self._down_since is not None:
                return
            self._down_since = self._wall()
        metrics.REDIS_UP.set(0)
        log.warning("cache L2 (Redis) unreachable, serving from L1 and loaders: %s", exc)

    def _came_up(self) -> None:
        with self._state_lock:
            if self._down_since is None:
                return
            outage = self._wall() - self._down_since
            self._down_since = None
        metrics.REDIS_UP.set(1)
        log.warning("cache L2 (Redis) is back after %.1fs", outage)
        for callback in list(self._recover_callbacks):
            try:
                callback()
            except Exception:  # a recovery hook must not fail the call that noticed
                log.exception("cache L2 recovery callback failed")


class _Guard:
    """Turns Redis failures into `available = False` instead of exceptions for the caller."""

    __slots__ = ("_tier", "failed")

    def __init__(self, tier: RedisCache) -> None:
        self._tier = tier
        self.failed = False

    def __enter__(self) -> _Guard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            if self._tier._down_since is not None:
                self._tier._came_up()
            return False
        if isinstance(exc, DOWN_ERRORS):
            self.failed = True
            self._tier._went_down(exc)
            return True
        if isinstance(exc, redis.RedisError):
            self.failed = True
            metrics.L2_ERRORS.inc()
            log.warning("cache L2 command failed: %s", exc)
            return True
        return False


def _millis(seconds: float) -> int | None:
    return None if math.isinf(seconds) else max(1, int(seconds * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, _BATCH)):
        yield batch
