"""Cache: L1 in this process, then L2 shared by every instance, then the loader.

Reads fill the tiers above them on the way back; an L1 entry never lives longer
than the L2 entry it came from. Invalidations drop L1 here, L2 for everyone, and
every other instance's L1 through the invalidation channel; each one is counted in
`app_cache_invalidations_total`. Async loaders share the same tiers: L2 calls are
short and bounded by socket timeouts, so they run inline (Flask gives each async
view a loop of its own); only loaders and waits yield.

Every read starts with the L1 hit path, `get` or `get_l1` (readers made by
`MemoryCache.reader`: one dict lookup, one comparison with the coarse clock, and
the hit tallied in a plain int that the ticker exports to Prometheus).
"""

from __future__ import annotations

import itertools
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from app.core.cache import metrics
from app.core.cache.invalidation import Invalidation, InvalidationChannel, PendingInvalidations
from app.core.cache.loading import AsyncSingleFlight, SingleFlight, aload, load
from app.core.cache.memory import LocalKeys, MemoryCache, Reader, return_default
from app.core.cache.serialization import dumps
from app.core.cache.tiers import FOREVER, CacheTier, Clock, Entry

T = TypeVar("T")
Ttl = float | timedelta | None
"""Seconds or a timedelta; None means the cache's default TTL."""

DEFAULT_TTL = 3600.0
DEFAULT_LOCAL_BUDGET = 24 * 1024 * 1024
"""Bytes of `get_or_set_local` values (rendered table regions) one process keeps at most."""
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counts since this Cache was built (Prometheus has the process-wide series)."""

    l1_hits: int
    l1_misses: int
    l2_hits: int
    l2_misses: int
    loads: int
    remote_invalidations: int


class Cache:
    """The unified cache: get, set, delete (by key, prefix, tag), get_or_set, and health."""

    get: Reader
    """Return the value from L1, else from L2 (filling L1), else `default`."""

    get_l1: Reader
    """Return the value if this process's L1 holds it, else `default`: no L2, no miss counted.

    For callers that go on to load on a miss (`@cached`): that step counts it.
    """

    def __init__(
        self,
        *,
        l1: MemoryCache | None = None,
        l2: CacheTier | None = None,
        channel: InvalidationChannel | None = None,
        default_ttl: Ttl = DEFAULT_TTL,
        lock_ttl: float = 5.0,
        degraded_l1_ttl: float = 10.0,
        max_pending: int = 10_000,
        local_budget: int = DEFAULT_LOCAL_BUDGET,
        clock: Clock = time.monotonic,
    ) -> None:
        self.l1 = l1 if l1 is not None else MemoryCache()
        self.l2 = l2
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.default_ttl = _seconds(default_ttl, DEFAULT_TTL)
        self.lock_ttl = lock_ttl
        self.clock = clock
        self._degraded_ttl = degraded_l1_ttl
        self._generations = itertools.count(1)  # next() is atomic: no lost bumps between threads
        self.generation = 0
        """Bumped by every invalidation: a read or load that straddles one is not kept."""
        self._flights = SingleFlight()
        self._async_flights = AsyncSingleFlight()
        self.local_keys = LocalKeys(local_budget)
        self._pending = PendingInvalidations(max_pending, origin=self.origin)
        self._counts = dict.fromkeys(("l1_misses", "l2_hits", "l2_misses", "loads"), 0)
        self._counts["remote_invalidations"] = 0  # l1_hits are tallied apart: see `get`
        self._hits = metrics.l1_hit_tally()
        self.get = self.l1.reader(self._get_below_l1, self._hits)
        self.get_l1 = self.l1.reader(return_default, self._hits)
        if l2 is not None and hasattr(l2, "on_recover"):
            l2.on_recover(self._on_l2_recovered)
        if channel is not None:
            channel.start(self._apply_remote, self._on_gap)

    # -- reads -------------------------------------------------------------

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
        value, current = self._lookup(key, self._flights.busy)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        template = self._entry(None, ttl, tags, early_ttl)
        return self._flights.run(key, lambda: load(self, key, loader, template, current))

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
        value, current = self._lookup(key, self._async_flights.busy)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        template = self._entry(None, ttl, tags, early_ttl)
        flights = self._async_flights
        return await flights.run(key, lambda: aload(self, key, loader, template, current))

    def get_or_set_local(
        self, key: str, loader: Callable[[], T], *, ttl: Ttl = None, tags: Iterable[str] = ()
    ) -> T:
        """`get_or_set` kept in this process's L1 only, never in L2.

        For values that are large, cheap to rebuild and keyed by what users type (rendered
        HTML): in Redis they would cost memory per distinct key, and a network hop to
        fetch. Their values take at most `local_keys.budget` bytes, the least recently
        used let go first. Invalidations drop them like any L1 entry, here and from other
        instances; while this instance may miss invalidations they are kept only briefly.
        """
        value = self.get_l1(key, _MISSING)
        if value is not _MISSING:
            self.local_keys.touch(key)
            return value  # type: ignore[no-any-return]
        self._count("l1_misses", metrics.L1_MISSES)
        template = self._entry(None, ttl, tags, None)

        def load_here() -> T:
            generation, started = self.generation, time.perf_counter()
            loaded = loader()
            self.keep(key, replace(template, value=loaded), generation, started, local=True)
            return loaded

        return self._flights.run(key, load_here)

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
        self._write(key, self._entry(value, ttl, tags, early_ttl), self.generation)
        self._send(Invalidation(keys=(key,), origin=self.origin))

    def add(self, key: str, value: Any, *, ttl: Ttl = None, tags: Iterable[str] = ()) -> bool:
        """Store only if no instance has the key yet; return whether it was stored."""
        entry = self._entry(value, ttl, tags, None)
        if self.l2 is not None and self.l2.available:
            added = self.l2.add_entry(key, entry)
        else:
            dumps(entry.value)  # refuse in embedded mode what Redis would refuse
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

    def health(self) -> dict[str, Any]:
        """Report tier and channel state for /readyz."""
        l2, channel = self.l2, self.channel
        return {
            "redis": "disabled" if l2 is None else ("up" if l2.available else "down"),
            "invalidation": "disabled" if channel is None else _listening(channel.connected),
            "l1_entries": len(self.l1),
            "l1_max_entries": self.l1.max_entries,
            "pending_invalidations": len(self._pending),
        }

    def stats(self) -> CacheStats:
        """Return this instance's counters (and push the tallied L1 hits to Prometheus)."""
        metrics.export_l1_hits()
        return CacheStats(l1_hits=self._hits.count, **self._counts)

    def close(self) -> None:
        """Stop the invalidation listener and release Redis connections."""
        metrics.export_l1_hits()
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

    # -- for loading.py ------------------------------------------------------

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

    def keep(
        self, key: str, entry: Entry, generation: int, started: float, *, local: bool = False
    ) -> None:
        """Record a load; store its entry (`local`: in L1 only) unless an invalidation came."""
        metrics.LOADER_SECONDS.observe(time.perf_counter() - started)
        self._counts["loads"] += 1
        if generation != self.generation:  # it may predate the change that invalidated it
            return
        if not local:
            self._write(key, entry, generation)
            return
        self.fill_l1(key, entry, generation)
        self.local_keys.add(key, sys.getsizeof(entry.value), self.l1)

    # -- internals -----------------------------------------------------------

    def _lookup(self, key: str, busy: Callable[[str], bool]) -> tuple[Any, Entry | None]:
        """L1, then L2: the value, or `_MISSING` and the entry due for early refresh (or None)."""
        value = self.get_l1(key, _MISSING)
        if value is not _MISSING:
            return value, None
        entry = self._below_l1(key)
        if entry is None:
            return _MISSING, None
        if entry.refresh_in <= 0 and not busy(key):
            return _MISSING, entry
        return entry.value, None

    def _get_below_l1(self, key: str, default: Any) -> Any:
        entry = self._below_l1(key)
        return default if entry is None else entry.value

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

    def _degraded(self) -> bool:
        """True while we may miss invalidations: L1 then keeps entries only briefly."""
        if self.l2 is not None and not self.l2.available:
            return True
        return self.channel is not None and not self.channel.connected

    def _write(self, key: str, entry: Entry, generation: int) -> None:
        if self.l2 is not None:
            self.l2.set_entry(key, entry)
        else:
            dumps(entry.value)  # refuse in embedded mode what Redis would refuse
        self.fill_l1(key, entry, generation)

    def _invalidate(self, invalidation: Invalidation) -> None:
        self._drop_l1(invalidation)
        if not self._drop_shared(invalidation):
            self._pending.add(invalidation)
        metrics.INVALIDATIONS.labels(kind=invalidation.kind, origin="local").inc()

    def _drop_l1(self, invalidation: Invalidation) -> None:
        self.generation = next(self._generations)
        invalidation.apply_to(self.l1)

    def _drop_shared(self, invalidation: Invalidation) -> bool:
        """Apply to L2 and tell the other instances; False if Redis could not take it."""
        l2 = self.l2
        if l2 is not None:
            if not l2.available:
                return False
            invalidation.apply_to(l2)
            if not l2.available:
                return False
        return self._send(invalidation)

    def _send(self, invalidation: Invalidation) -> bool:
        return self.channel is None or self.channel.publish(invalidation)

    def _on_l2_recovered(self) -> None:
        """Redis is back: L1 may hold what others invalidated meanwhile, and ours are owed."""
        self._on_gap()
        pending = self._pending.take()
        for done, invalidation in enumerate(pending):
            if not self._drop_shared(invalidation):  # down again: keep the rest for later
                self._pending.add(*pending[done:])
                return

    def _apply_remote(self, invalidation: Invalidation) -> None:
        if invalidation.origin == self.origin:
            return
        self._drop_l1(invalidation)
        labels = metrics.INVALIDATIONS.labels(kind=invalidation.kind, origin="remote")
        self._count("remote_invalidations", labels)

    def _on_gap(self) -> None:
        """We may have missed invalidations: an empty L1 is better than a stale one."""
        self._drop_l1(Invalidation(everything=True, origin=self.origin))
        metrics.INVALIDATIONS.labels(kind="all", origin="gap").inc()

    def _entry(self, value: Any, ttl: Ttl, tags: Iterable[str], early_ttl: Ttl) -> Entry:
        seconds = _seconds(ttl, self.default_ttl)
        refresh_in = FOREVER if early_ttl is None else _seconds(early_ttl, FOREVER)
        return Entry(value, seconds, refresh_in if refresh_in < seconds else FOREVER, tuple(tags))

    def _count(self, name: str, series: Any) -> None:
        self._counts[name] += 1
        series.inc()


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
