"""Stampede protection across instances: a short Redis lock per missing key, and early refresh.

`SingleFlight` already lets one caller per process load a key; that caller then takes
a lock in L2 so the other instances wait for its result instead of all hitting the
database. The lock is short and advisory: a waiter that outlives it loads by itself,
and an unreachable Redis never makes anyone wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from app.core.cache import metrics
from app.core.cache.memory import Clock
from app.core.cache.tiers import CacheTier, Entry

log = logging.getLogger(__name__)

T = TypeVar("T")

_cluster_waits = metrics.STAMPEDE_WAITS.labels(scope="cluster")


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a loaded value is kept, when one caller should refresh it early, its tags."""

    ttl: float
    refresh_in: float
    tags: tuple[str, ...]

    def entry(self, value: Any) -> Entry:
        """Return the entry to store for a freshly loaded value."""
        return Entry(value, self.ttl, self.refresh_in, self.tags)


class Owner(Protocol):
    """What loading needs from the Cache it runs for."""

    l2: CacheTier | None
    generation: int

    def fill_l1(self, key: str, entry: Entry, generation: int) -> None: ...

    def keep(
        self, key: str, value: Any, policy: Policy, generation: int, started: float
    ) -> None: ...


class Loads:
    """Runs the loader for a missing (or due for refresh) key on behalf of the whole cluster."""

    def __init__(self, owner: Owner, *, lock_ttl: float, clock: Clock) -> None:
        self._owner = owner
        self._lock_ttl = lock_ttl
        self._clock = clock

    def once(self, key: str, loader: Callable[[], T], policy: Policy) -> T:
        """Load under the L2 lock, or wait for the instance holding it and use its value."""
        generation, l2 = self._owner.generation, self._owner.l2
        if l2 is None or not l2.available:
            return self._load(key, loader, policy, generation)
        token = l2.try_lock(key, self._lock_ttl)
        if token is None:
            for delay in self._waits():
                time.sleep(delay)
                done, entry = self._other_load(l2, key, generation)
                if entry is not None:
                    return entry.value  # type: ignore[no-any-return]
                if done:
                    break
            return self._load(key, loader, policy, generation)
        try:
            entry = self._filled_meanwhile(l2, key, generation)
            if entry is not None:
                return entry.value  # type: ignore[no-any-return]
            return self._load(key, loader, policy, generation)
        finally:
            l2.release_lock(key, token)

    async def aonce(self, key: str, loader: Callable[[], Awaitable[T]], policy: Policy) -> T:
        """`once` for a coroutine loader; waiting yields to the loop."""
        generation, l2 = self._owner.generation, self._owner.l2
        if l2 is None or not l2.available:
            return await self._aload(key, loader, policy, generation)
        token = l2.try_lock(key, self._lock_ttl)
        if token is None:
            for delay in self._waits():
                await asyncio.sleep(delay)
                done, entry = self._other_load(l2, key, generation)
                if entry is not None:
                    return entry.value  # type: ignore[no-any-return]
                if done:
                    break
            return await self._aload(key, loader, policy, generation)
        try:
            entry = self._filled_meanwhile(l2, key, generation)
            if entry is not None:
                return entry.value  # type: ignore[no-any-return]
            return await self._aload(key, loader, policy, generation)
        finally:
            l2.release_lock(key, token)

    def refresh(self, key: str, entry: Entry, loader: Callable[[], T], policy: Policy) -> T:
        """Recompute ahead of expiry unless another instance does; on failure keep the old value."""
        l2 = self._owner.l2
        token = l2.try_lock(key, self._lock_ttl) if l2 is not None else None
        if token is None:
            return entry.value  # type: ignore[no-any-return]
        try:
            return self._load(key, loader, policy, self._owner.generation)
        except Exception:
            log.warning(
                "cache: early refresh of %r failed; serving the current value", key, exc_info=True
            )
            return entry.value  # type: ignore[no-any-return]
        finally:
            if l2 is not None:
                l2.release_lock(key, token)

    async def arefresh(
        self, key: str, entry: Entry, loader: Callable[[], Awaitable[T]], policy: Policy
    ) -> T:
        """`refresh` for a coroutine loader."""
        l2 = self._owner.l2
        token = l2.try_lock(key, self._lock_ttl) if l2 is not None else None
        if token is None:
            return entry.value  # type: ignore[no-any-return]
        try:
            return await self._aload(key, loader, policy, self._owner.generation)
        except Exception:
            log.warning(
                "cache: early refresh of %r failed; serving the current value", key, exc_info=True
            )
            return entry.value  # type: ignore[no-any-return]
        finally:
            if l2 is not None:
                l2.release_lock(key, token)

    def _waits(self) -> Iterator[float]:
        """Delays between polls while another instance loads, bounded by the lock's TTL."""
        _cluster_waits.inc()
        deadline, delay = self._clock() + self._lock_ttl, 0.005
        while self._clock() < deadline:
            yield delay
            delay = min(delay * 2, 0.05)

    def _other_load(self, l2: CacheTier, key: str, generation: int) -> tuple[bool, Entry | None]:
        """Poll another instance's load: (finished, the entry it stored if any)."""
        entry = l2.get_entry(key)
        if entry is None and not l2.is_locked(key):
            entry = l2.get_entry(key)  # it may have stored just before releasing
            if entry is None:
                return True, None
        if entry is None:
            return not l2.available, None
        self._owner.fill_l1(key, entry, generation)
        return True, entry

    def _filled_meanwhile(self, l2: CacheTier, key: str, generation: int) -> Entry | None:
        """Another instance may have stored the value between our miss and our lock."""
        entry = l2.get_entry(key)
        if entry is not None:
            self._owner.fill_l1(key, entry, generation)
        return entry

    def _load(self, key: str, loader: Callable[[], T], policy: Policy, generation: int) -> T:
        started = time.perf_counter()
        value = loader()
        self._owner.keep(key, value, policy, generation, started)
        return value

    async def _aload(
        self, key: str, loader: Callable[[], Awaitable[T]], policy: Policy, generation: int
    ) -> T:
        started = time.perf_counter()
        value = await loader()
        self._owner.keep(key, value, policy, generation, started)
        return value
