"""L1: the in-process cache of at most `max_entries` entries, each with its own TTL.

This is the hot path, so a hit is one dict lookup, one comparison with the coarse
clock (`ticker.TICKER.now`, an attribute, not a clock call) and one flag set:

- Reads take no lock: under the GIL each dict operation is atomic, and a read that
  races a write sees either the old or the new entry, both of which were valid.
  Writes take a lock so that evict-then-insert stays one step.
- Eviction is CLOCK (second chance), an approximation of LRU: a hit only sets the
  entry's `used` flag; when the tier is full, the sweep takes entries from the
  oldest end, and one whose flag is set gets it cleared and goes to the back of the
  queue instead of out. So an entry used since the last sweep always survives the
  next eviction, but the order among recently used entries is insertion order,
  not exact recency; that is the trade for not reordering the table on every hit.
- With the real clock, expiry is checked against the coarse clock, which is one
  tick ahead: entries expire up to `ticker.INTERVAL` (10 ms) early, never late
  (barring GIL starvation of the ticking thread). A `ManualClock` is exact.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any, Protocol

from app.core.cache import metrics
from app.core.cache.ticker import TICKER, Ticker
from app.core.cache.tiers import FOREVER, Entry, TierName

DEFAULT_MAX_ENTRIES = 1000

Miss = Callable[[str, Any], Any]
"""What a reader does with `(key, default)` when L1 has no live entry."""


class Reader(Protocol):
    """`get(key, default=None)` answered from L1 when it can (see `MemoryCache.reader`)."""

    def __call__(self, key: str, default: Any = None, /) -> Any: ...


class ManualClock:
    """A clock that moves only when told: TTL tests expire entries without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class Slot:
    """One L1 entry. `used` is the CLOCK reference flag: set by hits, cleared by the sweep."""

    __slots__ = ("expires_at", "refresh_at", "tags", "used", "value")

    def __init__(
        self, value: Any, expires_at: float, refresh_at: float, tags: tuple[str, ...]
    ) -> None:
        self.value = value
        self.expires_at = expires_at
        self.refresh_at = refresh_at
        self.tags = tags
        self.used = False


ABSENT = Slot(None, -math.inf, -math.inf, ())
"""What a missing key is looked up as (`table.get(key, ABSENT)`): never live, one test less."""

_MONOTONIC = time.monotonic  # the real one, even if a test patches time.monotonic later


class MemoryCache:
    """Up to `max_entries` entries, each with its own TTL, evicted CLOCK-wise (approximate LRU).

    Also the fake L2 in tests.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: ManualClock | None = None,
        name: TierName = "l1",
    ) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0 (0 disables the tier)")
        self.name: TierName = name
        self.max_entries = max_entries
        self._clock: Callable[[], float] = _MONOTONIC if clock is None else clock
        self._ticker: Ticker | None = TICKER if clock is None else None
        self._now: ManualClock | Ticker = TICKER if clock is None else clock
        if self._ticker is not None:
            self._ticker.start()
        self._data: dict[str, Slot] = {}  # insertion order is the eviction queue; never rebound
        self._lock = threading.Lock()
        self._locks: dict[str, tuple[str, float]] = {}
        self._evicted = metrics.EVICTIONS.labels(tier=name, reason="capacity")
        self._expired = metrics.EVICTIONS.labels(tier=name, reason="expired")
        self.get: Reader = self.reader(return_default, metrics.Tally())
        """Return the live value for `key` and mark it used, else `default`."""

    def reader(self, miss: Miss, hits: metrics.Tally) -> Reader:
        """Return a `get(key, default)` that answers hits itself and leaves the rest to `miss`.

        The one L1 hit path: `Cache.get`, `Cache.get_l1` (and through it every read of
        the Cache) are readers. A closure over the table and the time source, because
        a method call or an attribute lookup on `self` would cost a third of the hit.
        """
        table, clock, drop_expired = self._data, self._now, self._drop_expired

        def get(key: str, default: Any = None) -> Any:
            slot = table.get(key, ABSENT)
            if slot.expires_at > clock.now:
                slot.used = True
                hits.count += 1
                return slot.value
            if slot is not ABSENT:
                drop_expired(key, slot)
            return miss(key, default)

        return get

    @property
    def available(self) -> bool:
        """Always true: memory does not go down."""
        return True

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> list[str]:
        """Return the keys oldest first (used ones moved back by a sweep; expired ones too)."""
        return list(self._data)

    def get_entry(self, key: str) -> Entry | None:
        """Return the live entry with its remaining TTL, or None."""
        slot = self._data.get(key)
        if slot is None:
            return None
        now = self._clock()
        if slot.expires_at <= now:
            self._drop_expired(key, slot)
            return None
        return Entry(slot.value, slot.expires_at - now, slot.refresh_at - now, slot.tags)

    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float = FOREVER,
        tags: tuple[str, ...] = (),
        refresh_in: float = FOREVER,
    ) -> None:
        """Store `value` for `ttl` seconds, evicting (CLOCK-wise) when full."""
        if ttl <= 0 or self.max_entries == 0:
            return
        now = self._clock()
        if self._ticker is not None:
            self._ticker.catch_up(now)
        slot = Slot(value, now + ttl, now + refresh_in, tags)
        with self._lock:
            data = self._data
            if data.pop(key, None) is None:  # a new key (a known one just moves to the back)
                while len(data) >= self.max_entries:
                    self._evict_one(now)
            data[key] = slot

    def set_entry(self, key: str, entry: Entry) -> None:
        """Store an entry (the tier role's write)."""
        self.set(key, entry.value, ttl=entry.ttl, tags=entry.tags, refresh_in=entry.refresh_in)

    def add_entry(self, key: str, entry: Entry) -> bool:
        """Store an entry unless a live one is present."""
        with self._lock:
            slot = self._data.get(key)
            if slot is not None and slot.expires_at > self._clock():
                return False
            self._data.pop(key, None)
        self.set_entry(key, entry)
        return True

    def delete(self, keys: Collection[str]) -> None:
        """Drop these keys."""
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix`."""
        self._delete_where(lambda key, _: key.startswith(prefix))

    def delete_tag(self, tag: str) -> list[str]:
        """Drop every entry stored under `tag`; return their keys."""
        return self._delete_where(lambda _, slot: tag in slot.tags)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()

    def try_lock(self, key: str, ttl: float) -> str | None:
        """Take an in-process load lock (what Redis does across processes)."""
        now = self._clock()
        with self._lock:
            held = self._locks.get(key)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._locks[key] = (token, now + ttl)
            return token

    def release_lock(self, key: str, token: str) -> None:
        """Release the lock if `token` owns it."""
        with self._lock:
            held = self._locks.get(key)
            if held is not None and held[0] == token:
                del self._locks[key]

    def is_locked(self, key: str) -> bool:
        """Whether a live lock is held for `key`."""
        held = self._locks.get(key)
        return held is not None and held[1] > self._clock()

    def close(self) -> None:
        """Nothing to release."""

    def _evict_one(self, now: float) -> None:
        """Drop the oldest entry not used since the last sweep (an expired one goes first)."""
        data = self._data
        chances = len(data)  # bounded even if hits keep setting flags while we sweep
        while True:
            key = next(iter(data))
            slot = data.pop(key)
            if slot.expires_at <= now:
                self._expired.inc()
                return
            if not slot.used or chances <= 0:
                self._evicted.inc()
                return
            chances -= 1
            slot.used = False
            data[key] = slot  # a second chance, at the back of the queue

    def _drop_expired(self, key: str, slot: Slot) -> None:
        with self._lock:
            if self._data.get(key) is slot:  # not replaced by a fresh value meanwhile
                del self._data[key]
                self._expired.inc()

    def _delete_where(self, doomed: Callable[[str, Slot], bool]) -> list[str]:
        with self._lock:
            keys = [key for key, slot in list(self._data.items()) if doomed(key, slot)]
            for key in keys:
                del self._data[key]
        return keys


class LocalKeys:
    """The keys `Cache.get_or_set_local` stored and the bytes their values take, least
    recently used first, so that those values stay within `budget` bytes.

    A key whose entry left L1 some other way (expired, invalidated) still counts until it
    is the least recently used and is let go: the count errs on the side of less memory.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, size: int, l1: MemoryCache) -> None:
        """Note `key` (a value of `size` bytes) as the most recently used; drop the least
        recently used from `l1` while the values take more than the budget."""
        with self._lock:
            self.used += size - self._sizes.pop(key, 0)
            self._sizes[key] = size
            while self.used > self.budget and self._sizes:
                oldest, freed = self._sizes.popitem(last=False)
                self.used -= freed
                l1.delete((oldest,))

    def touch(self, key: str) -> None:
        """Note a hit on `key`: the most recently used now (no lock: one C call)."""
        with contextlib.suppress(KeyError):  # let go meanwhile by another thread
            self._sizes.move_to_end(key)


def return_default(key: str, default: Any) -> Any:
    """The miss of a reader that looks no further than L1."""
    return default
