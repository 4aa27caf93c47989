"""Single-flight: concurrent misses of one key in this process share one loader call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from app.core.cache import metrics

T = TypeVar("T")

_process_waits = metrics.STAMPEDE_WAITS.labels(scope="process")


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
