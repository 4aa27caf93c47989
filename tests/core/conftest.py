"""Cache test fixtures: a manual clock, a per-test key prefix, Redis, and a cuttable proxy."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from app.core.cache import Cache, CacheConfig, ManualClock, build_cache, set_default_cache
from tests.conftest import RUN_ID, require


@pytest.fixture
def clock() -> ManualClock:
    """A monotonic clock the test moves by hand."""
    return ManualClock()


@pytest.fixture(autouse=True)
def _no_default_cache() -> Iterator[None]:
    """`@cached` must not see another test's process-default cache."""
    set_default_cache(None)
    yield
    set_default_cache(None)


@pytest.fixture
def cache_prefix() -> Iterator[str]:
    """A key prefix no other test or run uses (tests never FLUSHDB a shared Redis)."""
    prefix = f"test-{RUN_ID}-cache-{uuid.uuid4().hex[:8]}"
    yield prefix
    if os.environ.get("REDIS_URL"):
        drop_keys(prefix)


@pytest.fixture
def redis_url() -> str:
    """REDIS_URL, or skip (fail under REQUIRE_SERVICES=1)."""
    return require("REDIS_URL")


@pytest.fixture
def make_cache(cache_prefix: str) -> Iterator[Callable[..., Cache]]:
    """Build caches like app instances do (same prefix: they share L2); all closed afterwards."""
    built: list[Cache] = []

    def make(redis_url: str | None, **overrides: object) -> Cache:
        config = CacheConfig(redis_url=redis_url, key_prefix=cache_prefix, **overrides)  # type: ignore[arg-type]
        cache = build_cache(config)
        built.append(cache)
        if cache.channel is not None:
            assert cache.channel.wait_connected(5.0)  # type: ignore[attr-defined]
        return cache

    yield make
    for cache in built:
        cache.close()


def drop_keys(prefix: str) -> None:
    """Delete this test's keys (every namespace version, tags, locks) and nothing else."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.unlink(key)
    finally:
        client.close()


class TcpProxy:
    """Forwards a local port to Redis; `stop()` is Redis going away, `start()` it coming back."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path.lstrip("/") or "0"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/{self.db}"
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener, self._running = listener, True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        self._running = False
        with self._lock:
            doomed, self._sockets = self._sockets, []
        if self._listener is not None:
            doomed.append(self._listener)
            self._listener = None
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._running:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while self._running:
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_url)
    proxy.start()
    yield proxy
    proxy.stop()
