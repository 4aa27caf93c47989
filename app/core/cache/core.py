"""Cache: L1 in this process, then L2 shared by every instance, then the loader.

Reads fill the tiers above them on the way back; an L1 entry never lives longer
than the L2 entry it came from. Invalidations drop L1 here, L2 for everyone, and
every other instance's L1 through the invalidation channel. Async loaders share
the same tiers: L2 calls are short and bounded by socket timeouts, so they run
inline (Flask gives each async view a loop of its own); only loaders and
waits yield.

An L1 hit is the hot path: `get`, `get_or_set` and `get_l1` read L1's table
themselves (one dict lookup, one comparison with the coarse clock) and count the
hit in a plain integer; the ticker thread exports the counts to Prometheus about
once a second (and `stats`/`close` do at once).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from app.core.cache import metrics
from app.core.cache.flight import AsyncSingleFlight, SingleFlight
from app.core.cache.invalidation import Invalidation, InvalidationChannel, PendingInvalidations
from app.core.cache.memory import ABSENT, Clock, MemoryCache
from app.core.cache.serialization import dumps
from app.core.cache.stampede import Loads, Policy
from app.core.cache.ticker import TICKER
from app.core.cache.tiers import FOREVER, CacheTier, Entry

log = logging.getLogger(__name__)

T = TypeVar("T")
Ttl = float | timedelta | None
"""Seconds or a timedelta; None means the cache's default TTL."""

DEFAULT_TTL = 3600.0
DEFAULT_MAX_LOCAL_ENTRIES = 200
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counts since this Cache was built (Prometheus has the process-wide series)."""

    l1_hits: int
    l1_misses: int
    l2_hits: int
    l2_misses: int
    loads: int
    invalidations: int
    remote_invalidations: int
    gaps: int


class LocalKeys:
    """The keys `get_or_set_local` stored, oldest first, so the oldest can be let go."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, l1: MemoryCache) -> None:
        """Note `key` as the newest; drop the oldest from `l1` beyond the limit."""
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.limit:
                oldest, _ = self._keys.popitem(last=False)
                l1.delete((oldest,))


class Cache:
    """The unified cache: get, set, delete (by key, prefix, tag), get_or_set, and health."""

    def __init__(
        self,
        *,
        l1: MemoryCache | None = None,
        l2: CacheTier | None = None,
        channel: InvalidationChannel | None = None,
        default_ttl: Ttl = DEFAULT_TTL,
        lock_ttl: float = 5.0,
        degraded_l1_ttl: float = 10.0,
        publish_events: bool = True,
        max_pending: int = 10_000,
        max_local_entries: int = DEFAULT_MAX_LOCAL_ENTRIES,
        clock: Clock = time.monotonic,
    ) -> None:
        self.l1 = l1 if l1 is not None else MemoryCache()
        self.l2 = l2
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.default_ttl = _seconds(default_ttl, DEFAULT_TTL)
        self._l1_get = self.l1.get
        self._l1_table, self._l1_now = self.l1.hot_path()  # read inline by the hit paths
        self._degraded_ttl = degraded_l1_ttl
        self._publish_events = publish_events
        self._generations = itertools.count(1)  # next() is atomic: no lost bumps between threads
        self.generation = 0
        """Bumped by every invalidation: a read or load that straddles one is not kept."""
        self._loads = Loads(self, lock_ttl=lock_ttl, clock=clock)
        self._flights = SingleFlight()
        self.local_keys = LocalKeys(max_local_entries)
        self._async_flights = AsyncSingleFlight()
        self._pending = PendingInvalidations(max_pending, origin=self.origin)
        self._counts = dict.fromkeys(CacheStats.__slots__, 0)
        # L1 hits reach Prometheus in batches: a Counter.inc costs more than the hit itself.
        self._l1_hits = self._l1_hits_exported = 0
        self._export_lock = threading.Lock()
        with _LIVE_LOCK:
            _LIVE.add(self)
        TICKER.start()  # its once-a-second job exports the hit counts
        if l2 is not None and hasattr(l2, "on_recover"):
            l2.on_recover(self._on_l2_recovered)
        if channel is not None:
            channel.start(self._apply_remote, self._on_gap)

    # -- reads -------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value from L1, else from L2 (filling L1), else `default`."""
        slot = self._l1_table.get(key, ABSENT)  # the L1 hit, inline: see MemoryCache.get
        if slot.expires_at > self._l1_now.now:
            slot.used = True
            self._l1_hits += 1
            return slot.value
        value = self._l1_slow(key)
        if value is not _MISSING:
            return value
        entry = self._below_l1(key)
        return default if entry is None else entry.value

    def get_l1(self, key: str, default: Any = None) -> Any:
        """Return the value if this process's L1 holds it (a hit), else `default`; no L2, no miss.

        For callers that go on to `get_or_set` on a miss (`@cached`): that call counts it.
        """
        slot = self._l1_table.get(key, ABSENT)
        if slot.expires_at > self._l1_now.now:
            slot.used = True
            self._l1_hits += 1
            return slot.value
        value = self._l1_slow(key)
        return default if value is _MISSING else value

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], T],
        *,
        ttl: Ttl = None,
        tags: Iterable[str] = (),
        early_ttl: Ttl = None,
    ) -> T:
        """Return the cached value, or run `loader` once per process (and per cluster) and keep it.

        With `early_ttl`, the first caller after that age recomputes the value while
        everyone else keeps getting the current one, so hot keys never expire under load.
        """
        slot = self._l1_table.get(key, ABSENT)
        if slot.expires_at > self._l1_now.now:
            slot.used = True
            self._l1_hits += 1
            return slot.value  # type: ignore[no-any-return]
        value = self._l1_slow(key)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        policy = self._policy(ttl, tags, early_ttl)
        entry = self._below_l1(key)
        if entry is None:
            return self._flights.run(key, lambda: self._loads.once(key, loader, policy))
        if entry.refresh_in <= 0 and not self._flights.busy(key):
            return self._flights.run(key, lambda: self._loads.refresh(key, entry, loader, policy))
        return entry.value  # type: ignore[no-any-return]

    async def aget_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: Ttl = None,
        tags: Iterable[str] = (),
        early_ttl: Ttl = None,
    ) -> T:
        """`get_or_set` for a coroutine loader; concurrent misses on one loop share one await."""
        slot = self._l1_table.get(key, ABSENT)
        if slot.expires_at > self._l1_now.now:
            slot.used = True
            self._l1_hits += 1
            return slot.value  # type: ignore[no-any-return]
        value = self._l1_slow(key)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        policy = self._policy(ttl, tags, early_ttl)
        entry = self._below_l1(key)
        flights = self._async_flights
        if entry is None:
            return await flights.run(key, lambda: self._loads.aonce(key, loader, policy))
        if entry.refresh_in <= 0 and not flights.busy(key):
            return await flights.run(key, lambda: self._loads.arefresh(key, entry, loader, policy))
        return entry.value  # type: ignore[no-any-return]

    def get_or_set_local(
        self,
        key: str,
        loader: Callable[[], T],
        *,
        ttl: Ttl = None,
        tags: Iterable[str] = (),
    ) -> T:
        """`get_or_set` kept in this process's L1 only, never in L2.

        For values that are large, cheap to rebuild and keyed by what users type (rendered
        HTML): in Redis they would cost memory per distinct key, and a network hop to
        fetch. At most `max_local_entries` are kept (the L1 counts entries, not bytes), the
        oldest let go first. Invalidations drop them like any L1 entry, here and from other
        instances; while this instance may miss invalidations they are kept only briefly.
        """
        value = self.get_l1(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        self._count("l1_misses", metrics.L1_MISSES)
        policy = self._policy(ttl, tags, None)

        def load() -> T:
            generation, started = self.generation, time.perf_counter()
            loaded = loader()
            self._record_load(started)
            self.fill_l1(key, policy.entry(loaded), generation)  # not kept if invalidated meanwhile
            self.local_keys.add(key, self.l1)
            return loaded

        return self._flights.run(key, load)

    # -- writes and invalidation -------------------------------------------

    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: Ttl = None,
        tags: Iterable[str] = (),
        early_ttl: Ttl = None,
    ) -> None:
        """Store in L2 and L1, and drop the key from the other instances' L1 (a set overwrites)."""
        self._write(key, self._policy(ttl, tags, early_ttl).entry(value), self.generation)
        self._send(Invalidation(keys=(key,), origin=self.origin))

    def add(self, key: str, value: Any, *, ttl: Ttl = None, tags: Iterable[str] = ()) -> bool:
        """Store only if no instance has the key yet; return whether it was stored."""
        entry = self._policy(ttl, tags, None).entry(value)
        if self.l2 is not None and self.l2.available:
            added = self.l2.add_entry(key, entry)
        else:
            self._check_value(entry.value)
            added = self.l1.get(key, _MISSING) is _MISSING
        if added:
            self.fill_l1(key, entry, self.generation)
        return added

    def delete(self, *keys: str) -> None:
        """Drop keys from every tier of every instance."""
        self._invalidate(Invalidation(keys=keys, origin=self.origin))

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix`, everywhere (a SCAN in Redis: prefer tags)."""
        self._invalidate(Invalidation(prefixes=(prefix,), origin=self.origin))

    def delete_tag(self, *tags: str) -> None:
        """Drop every key stored with any of these tags, everywhere."""
        self._invalidate(Invalidation(tags=tags, origin=self.origin))

    def clear(self) -> None:
        """Drop everything in this cache's namespace, everywhere (never FLUSHDB)."""
        self._invalidate(Invalidation(everything=True, origin=self.origin))

    # -- state -------------------------------------------------------------

    def health(self, *, probe: bool = False) -> dict[str, Any]:
        """Report tier and channel state for /readyz; `probe` asks Redis now, not from memory."""
        if probe and self.l2 is not None:
            self.l2.ping()
        channel = self.channel
        return {
            "redis": "disabled" if self.l2 is None else ("up" if self.l2.available else "down"),
            "invalidation": "disabled" if channel is None else _listening(channel.connected),
            "l1_entries": len(self.l1),
            "l1_max_entries": self.l1.max_entries,
            "pending_invalidations": len(self._pending),
        }

    def stats(self) -> CacheStats:
        """Return this instance's counters (and push batched L1 hits to Prometheus)."""
        self._export_l1_hits()
        return CacheStats(**{**self._counts, "l1_hits": self._l1_hits})

    def close(self) -> None:
        """Stop the invalidation listener and release Redis connections."""
        self._export_l1_hits()
        if self.channel is not None:
            self.channel.close()
        if self.l2 is not None:
            self.l2.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals: reading ------------------------------------------------

    def _l1_slow(self, key: str) -> Any:
        """Past the inline lookup: drop an expired entry, or see one filled meanwhile."""
        value = self._l1_get(key, _MISSING)
        if value is not _MISSING:
            self._l1_hits += 1
        return value

    def _below_l1(self, key: str) -> Entry | None:
        self._count("l1_misses", metrics.L1_MISSES)
        if self.l2 is None:
            return None
        generation = self.generation
        entry = self.l2.get_entry(key)
        if entry is None:
            if self.l2.available:
                self._count("l2_misses", metrics.L2_MISSES)
            return None
        self._count("l2_hits", metrics.L2_HITS)
        self.fill_l1(key, entry, generation)
        return entry

    def fill_l1(self, key: str, entry: Entry, generation: int) -> None:
        """Copy an entry into L1 for no longer than L2 keeps it (or until its early refresh)."""
        ttl = min(entry.ttl, entry.refresh_in)
        if self._degraded():
            ttl = min(ttl, self._degraded_ttl)
        if ttl <= 0 or generation != self.generation:
            return
        self.l1.set(key, entry.value, ttl=ttl, tags=entry.tags)
        if generation != self.generation:  # an invalidation slipped in while we wrote
            self.l1.delete((key,))

    def _degraded(self) -> bool:
        """True while we may miss invalidations: L1 then keeps entries only briefly."""
        if self.l2 is not None and not self.l2.available:
            return True
        return self.channel is not None and not self.channel.connected

    def keep(self, key: str, value: Any, policy: Policy, generation: int, started: float) -> None:
        """Record a load and store its value, unless an invalidation came while it ran."""
        self._record_load(started)
        if generation == self.generation:  # else it may predate the change that invalidated it
            self._write(key, policy.entry(value), generation)

    def _record_load(self, started: float) -> None:
        metrics.LOADER_SECONDS.observe(time.perf_counter() - started)
        self._counts["loads"] += 1

    # -- internals: writing and invalidating -------------------------------

    def _write(self, key: str, entry: Entry, generation: int) -> None:
        if self.l2 is not None:
            self.l2.set_entry(key, entry)
        else:
            self._check_value(entry.value)
        self.fill_l1(key, entry, generation)

    def _check_value(self, value: Any) -> None:
        """Refuse in embedded mode what Redis would refuse, so both modes behave alike."""
        dumps(value)

    def _invalidate(self, invalidation: Invalidation) -> None:
        self._drop_local(invalidation)
        sent = self._drop_shared(invalidation)
        if sent is None:
            self._pending.add(invalidation)
        labels = metrics.INVALIDATIONS.labels(kind=invalidation.kind, origin="local")
        self._count("invalidations", labels)

    def _drop_local(self, invalidation: Invalidation) -> None:
        self.generation = next(self._generations)
        if invalidation.everything:
            self.l1.clear()
            return
        self.l1.delete(invalidation.keys)
        for prefix in invalidation.prefixes:
            self.l1.delete_prefix(prefix)
        for tag in invalidation.tags:
            self.l1.delete_tag(tag)

    def _drop_shared(self, invalidation: Invalidation) -> Invalidation | None:
        """Apply to L2 and tell the other instances what was dropped; None if Redis could not."""
        l2 = self.l2
        if l2 is None:
            return invalidation if self._send(invalidation) else None
        if not l2.available:
            return None
        keys = list(invalidation.keys)
        if invalidation.everything:
            l2.clear()
        l2.delete(invalidation.keys)
        for prefix in invalidation.prefixes:
            l2.delete_prefix(prefix)
        for tag in invalidation.tags:
            keys.extend(key for key in l2.delete_tag(tag) if key not in keys)
        sent = replace(invalidation, keys=tuple(keys))  # tag members resolved, for the audit
        return sent if l2.available and self._send(sent) else None

    def _send(self, invalidation: Invalidation) -> bool:
        return self.channel is None or self.channel.publish(invalidation)

    def _on_l2_recovered(self) -> None:
        """Redis is back: L1 may hold what others invalidated meanwhile, and ours are owed."""
        self._on_gap()
        pending = self._pending.take()
        for done, invalidation in enumerate(pending):
            if self._drop_shared(invalidation) is None:  # down again: keep the rest for later
                self._pending.extend(pending[done:])
                return

    def _apply_remote(self, invalidation: Invalidation) -> None:
        if invalidation.origin == self.origin:
            return
        self._drop_local(invalidation)
        labels = metrics.INVALIDATIONS.labels(kind=invalidation.kind, origin="remote")
        self._count("remote_invalidations", labels)

    def _on_gap(self) -> None:
        """We may have missed invalidations: an empty L1 is better than a stale one."""
        self.generation = next(self._generations)
        self.l1.clear()
        self._count("gaps", metrics.INVALIDATIONS.labels(kind="all", origin="gap"))

    # -- internals: policy and counters ------------------------------------

    def _policy(self, ttl: Ttl, tags: Iterable[str], early_ttl: Ttl) -> Policy:
        seconds = _seconds(ttl, self.default_ttl)
        refresh_in = FOREVER if early_ttl is None else _seconds(early_ttl, FOREVER)
        return Policy(seconds, refresh_in if refresh_in < seconds else FOREVER, tuple(tags))

    def _count(self, name: str, series: Any) -> None:
        self._counts[name] += 1
        series.inc()

    def _export_l1_hits(self) -> None:
        with self._export_lock:
            hits = self._l1_hits
            if hits > self._l1_hits_exported:
                metrics.L1_HITS.inc(hits - self._l1_hits_exported)
                self._l1_hits_exported = hits


_LIVE: weakref.WeakSet[Cache] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def export_hits() -> None:
    """Push every live Cache's batched L1 hits to Prometheus (the ticker does it every second)."""
    with _LIVE_LOCK:
        caches = list(_LIVE)
    for cache in caches:
        cache._export_l1_hits()


def _after_fork_in_child() -> None:
    """The parent exports the hits it counted; a child starts from what it inherited."""
    global _LIVE_LOCK
    _LIVE_LOCK = threading.Lock()
    for cache in list(_LIVE):
        cache._export_lock = threading.Lock()
        cache._l1_hits_exported = cache._l1_hits


TICKER.add_job(export_hits)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _listening(connected: bool) -> str:
    return "listening" if connected else "down"


def _seconds(ttl: Ttl, default: float) -> float:
    """Normalise a TTL to positive seconds (`FOREVER` is allowed)."""
    if ttl is None:
        return default
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError(f"a cache TTL must be positive, got {ttl!r} (use FOREVER for no expiry)")
    return seconds
