"""Bridges between the pipeline's threads and an asyncio event loop.

Stages pull items synchronously (generators are what make streaming cheap), so
coroutines are handed to an event loop running in another thread: the caller's
loop under ``arun``, or a private one that ``run`` starts only if needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterator
from typing import TypeVar

T = TypeVar("T")


class LoopWaiter:
    """Wait, from a worker thread, for awaitables run as tasks on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and block this thread until it is done."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._ensure_loop()).result()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        """Return the loop, starting a private one in a daemon thread on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="pipeline-loop", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        """Stop the private loop, if one was started; a borrowed loop is left alone."""
        with self._lock:
            if self._thread is None or self._loop is None:
                return
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._thread = None
            self._loop = None


async def _awaited(awaitable: Awaitable[T]) -> T:
    """Wrap any awaitable in a coroutine, which is what ``run_coroutine_threadsafe`` takes."""
    return await awaitable


async def _anext(iterator: AsyncIterator[T]) -> T:
    """Await the next item as a coroutine for ``run_coroutine_threadsafe``."""
    return await anext(iterator)


def iterate_async(items: AsyncIterable[T], loop: asyncio.AbstractEventLoop) -> Iterator[T]:
    """Read an async iterable from a worker thread, one item at a time, on ``loop``."""
    iterator = aiter(items)
    while True:
        try:
            value = asyncio.run_coroutine_threadsafe(_anext(iterator), loop).result()
        except StopAsyncIteration:
            return
        yield value
