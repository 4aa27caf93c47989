"""Loading a missing key once: once per process (single-flight), then once per cluster.

In a process, concurrent misses of one key share one loader call. That caller then
takes a short lock in L2, so the other instances wait for its value instead of all
hitting the database. The lock is advisory: a waiter that outlives it loads by
itself, and an unreachable Redis never makes anyone wait. An early refresh is the
same load with the current entry at hand: whoever does not get the lock keeps
serving it, and so does a refresh that fails.

The algorithm is written once, as a coroutine (`_load`); the blocking `load` runs it
with a blocking sleep and a plain loader, so it never suspends and needs no loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.core.cache import metrics
from app.core.cache.tiers import CacheTier, Entry

if TYPE_CHECKING:
    from app.core.cache.core import Cache

log = logging.getLogger(__name__)

T = TypeVar("T")

_process_waits = metrics.STAMPEDE_WAITS.labels(scope="process")
_cluster_waits = metrics.STAMPEDE_WAITS.labels(scope="cluster")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Threads asking for a key being loaded wait for that load instead of starting their own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call[Any]] = {}

    def run(self, key: str, load: Callable[[], T]) -> T:
        """Return `load()`, run by the first caller for `key`; the others share its outcome."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            _process_waits.inc()
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[return-value]
        try:
            call.result = load()
            return call.result
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    def busy(self, key: str) -> bool:
        """Whether a load of `key` is in flight (an early refresh then leaves it alone)."""
        return key in self._calls


class AsyncSingleFlight:
    """The same for coroutines; a flight belongs to one event loop (Flask runs one per request)."""

    def __init__(self) -> None:
        self._calls: dict[tuple[int, str], asyncio.Future[Any]] = {}

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """Return `await load()`, run by the first caller for `key` on this loop."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        pending = self._calls.get(slot)
        if pending is not None:
            _process_waits.inc()
            result: T = await asyncio.shield(pending)
            return result
        future: asyncio.Future[Any] = loop.create_future()
        self._calls[slot] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._calls[slot]

    def busy(self, key: str) -> bool:
        """Whether a load of `key` is in flight on the running loop."""
        return (id(asyncio.get_running_loop()), key) in self._calls


def load(
    cache: Cache, key: str, loader: Callable[[], T], template: Entry, current: Entry | None
) -> T:
    """Load `key` for the cluster and keep it as `template` says (`current`: an early refresh)."""

    async def call() -> T:
        return loader()

    coroutine = _load(cache, key, call, template, current, _blocking_sleep)
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a blocking cache load suspended")  # pragma: no cover - cannot happen


async def aload(
    cache: Cache,
    key: str,
    loader: Callable[[], Awaitable[T]],
    template: Entry,
    current: Entry | None,
) -> T:
    """`load` for a coroutine loader: waiting for another instance yields to the loop."""
    return await _load(cache, key, loader, template, current, asyncio.sleep)


async def _blocking_sleep(delay: float) -> None:
    time.sleep(delay)  # the blocking path: this thread waits, as its caller expects


async def _load(
    cache: Cache,
    key: str,
    loader: Callable[[], Awaitable[T]],
    template: Entry,
    current: Entry | None,
    sleep: Callable[[float], Coroutine[Any, Any, None]],
) -> T:
    generation, l2 = cache.generation, cache.l2
    if l2 is None or not l2.available:
        return await _run(cache, key, loader, template, current, generation)
    token = l2.try_lock(key, cache.lock_ttl)
    if token is None:
        if current is not None:
            return current.value  # type: ignore[no-any-return]  # another instance refreshes
        for delay in _waits(cache):
            await sleep(delay)
            done, entry = _poll(cache, l2, key, generation)
            if entry is not None:
                return entry.value  # type: ignore[no-any-return]
            if done:
                break
        return await _run(cache, key, loader, template, current, generation)
    try:
        if current is None:  # another instance may have stored it between our miss and our lock
            entry = l2.get_entry(key)
            if entry is not None:
                cache.fill_l1(key, entry, generation)
                return entry.value  # type: ignore[no-any-return]
        return await _run(cache, key, loader, template, current, generation)
    finally:
        l2.release_lock(key, token)


async def _run(
    cache: Cache,
    key: str,
    loader: Callable[[], Awaitable[T]],
    template: Entry,
    current: Entry | None,
    generation: int,
) -> T:
    started = time.perf_counter()
    try:
        value = await loader()
    except Exception:
        if current is None:
            raise
        log.warning(
            "cache: early refresh of %r failed; serving the current value", key, exc_info=True
        )
        return current.value  # type: ignore[no-any-return]
    cache.keep(key, replace(template, value=value), generation, started)
    return value


def _waits(cache: Cache) -> Iterator[float]:
    """Delays between polls while another instance loads, bounded by the lock's TTL."""
    _cluster_waits.inc()
    deadline, delay = cache.clock() + cache.lock_ttl, 0.005
    while cache.clock() < deadline:
        yield delay
        delay = min(delay * 2, 0.05)


def _poll(cache: Cache, l2: CacheTier, key: str, generation: int) -> tuple[bool, Entry | None]:
    """Look at another instance's load: (finished, the entry it stored if any)."""
    entry = l2.get_entry(key)
    if entry is None and not l2.is_locked(key):
        entry = l2.get_entry(key)  # it may have stored just before releasing
        if entry is None:
            return True, None
    if entry is None:
        return not l2.available, None
    cache.fill_l1(key, entry, generation)
    return True, entry
