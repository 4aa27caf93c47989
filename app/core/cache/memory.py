"""L1: the in-process LRU with per-entry TTL that answers most reads without leaving the process.

Reads take no lock: under the GIL each OrderedDict call is atomic, and a read that
races a write sees either the old or the new entry, both of which were valid.
Writes take a lock so that insert-then-evict stays one step.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from app.core.cache import metrics
from app.core.cache.tiers import FOREVER, Entry, TierName

Clock = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back (`time.monotonic`, or a fake in tests)."""

DEFAULT_MAX_ENTRIES = 1000


class ManualClock:
    """A `Clock` that moves only when told: TTL tests expire entries without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class _Slot(NamedTuple):
    value: Any
    expires_at: float
    refresh_at: float
    tags: tuple[str, ...]


class MemoryCache:
    """LRU of at most `max_entries` entries, each with its own TTL; also the fake L2 in tests."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = time.monotonic,
        name: TierName = "l1",
    ) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0 (0 disables the tier)")
        self.name: TierName = name
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, _Slot] = OrderedDict()
        self._lock = threading.Lock()
        self._locks: dict[str, tuple[str, float]] = {}
        self._evicted = metrics.EVICTIONS.labels(tier=name, reason="capacity")
        self._expired = metrics.EVICTIONS.labels(tier=name, reason="expired")

    @property
    def available(self) -> bool:
        """Always true: memory does not go down."""
        return True

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> list[str]:
        """Return the keys from least to most recently used (expired ones included)."""
        return list(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the live value for `key` and mark it most recently used; the hot path."""
        slot = self._data.get(key)
        if slot is None:
            return default
        if slot.expires_at <= self._clock():
            self._drop_expired(key, slot)
            return default
        # Not contextlib.suppress: this is the hot path. A KeyError means another
        # thread deleted the key since the lookup; the value we read was valid.
        try:  # noqa: SIM105
            self._data.move_to_end(key)
        except KeyError:
            pass
        return slot.value

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
        """Store `value` for `ttl` seconds, evicting the least recently used entry when full."""
        if ttl <= 0 or self.max_entries == 0:
            return
        now = self._clock()
        slot = _Slot(value, now + ttl, now + refresh_in, tags)
        with self._lock:
            self._data[key] = slot
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                _, evicted = self._data.popitem(last=False)
                (self._expired if evicted.expires_at <= now else self._evicted).inc()

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

    def ping(self) -> bool:
        """Always true."""
        return True

    def close(self) -> None:
        """Nothing to release."""

    def _drop_expired(self, key: str, slot: _Slot) -> None:
        with self._lock:
            if self._data.get(key) is slot:  # not replaced by a fresh value meanwhile
                del self._data[key]
                self._expired.inc()

    def _delete_where(self, doomed: Callable[[str, _Slot], bool]) -> list[str]:
        with self._lock:
            keys = [key for key, slot in list(self._data.items()) if doomed(key, slot)]
            for key in keys:
                del self._data[key]
        return keys
