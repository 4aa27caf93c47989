"""The cache against a real Redis: shared L2, invalidation between instances, stampedes, outages."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask_caching
import pytest
import redis
from flask import Flask, Response

from app.core.cache import Cache, RedisCache, connect, namespace_for
from app.core.cache.flask import get_cache

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until `check()` holds: pub/sub delivery is asynchronous."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_two_instances_share_l2_under_the_namespace(
    make_cache: Any, redis_url: str, cache_prefix: str
) -> None:
    a, b = make_cache(redis_url), make_cache(redis_url)
    a.set("user:1", {"name": "Ada", "roles": ("admin",)})
    # A set tells the other instances to drop their old copy; let that land first.
    assert eventually(lambda: b.stats().remote_invalidations == 1)
    assert b.get("user:1") == {"name": "Ada", "roles": ("admin",)}
    assert b.stats().l2_hits == 1
    assert b.l1.get("user:1") == {"name": "Ada", "roles": ("admin",)}
    raw = redis.Redis.from_url(redis_url)
    try:
        ttl_ms = raw.pttl(f"{cache_prefix}:v1:user:1")
    finally:
        raw.close()
    assert 3_590_000 < ttl_ms <= 3_600_000


def test_a_new_version_does_not_read_the_old_format(make_cache: Any, redis_url: str) -> None:
    old, new = make_cache(redis_url), make_cache(redis_url, version=2)
    old.set("k", "v1 layout")
    assert new.get("k") is None


def test_invalidations_in_one_instance_reach_the_others_l1(make_cache: Any, redis_url: str) -> None:
    a, b = make_cache(redis_url), make_cache(redis_url)
    a.set("user:1", 1, tags=["team:a"])
    a.set("user:2", 2)
    a.set("item:1", 3, tags=["team:a"])
    a.set("item:2", 4)
    for key in ("user:1", "user:2", "item:1", "item:2"):
        assert b.get(key) is not None
    a.delete("user:2")
    assert eventually(lambda: b.l1.get("user:2") is None)
    a.delete_tag("team:a")
    assert eventually(lambda: b.l1.keys() == ["item:2"])
    assert b.get("user:1") is None and b.get("item:1") is None
    a.delete_prefix("item:")
    assert eventually(lambda: len(b.l1) == 0)
    assert b.get("item:2") is None
    assert b.stats().remote_invalidations >= 3


def test_clear_drops_only_this_namespace(make_cache: Any, redis_url: str) -> None:
    mine, other = make_cache(redis_url), make_cache(redis_url, version=7)
    mine.set("k", 1, tags=["t"])
    other.set("k", 2)
    mine.clear()
    assert mine.get("k") is None
    assert other.get("k") == 2


def test_the_tag_index_lives_as_long_as_its_longest_entry(
    make_cache: Any, redis_url: str, cache_prefix: str
) -> None:
    cache = make_cache(redis_url)
    cache.set("a", 1, ttl=30, tags=["t"])
    cache.set("b", 1, ttl=90, tags=["t"])
    cache.set("c", 1, ttl=10, tags=["t"])
    raw = redis.Redis.from_url(redis_url)
    try:
        ttl_ms = raw.pttl(f"{cache_prefix}:v1#tag:t")
    finally:
        raw.close()
    assert 80_000 < ttl_ms <= 90_000


def test_l1_copies_expire_with_the_l2_entry(
    make_cache: Any, redis_url: str, cache_prefix: str
) -> None:
    writer = make_cache(redis_url)
    writer.set("k", 1, ttl=60)
    later = RedisCache(
        connect(redis_url),
        namespace=namespace_for(cache_prefix, 1),
        wall_clock=lambda: time.time() + 45,  # a reader 45 s into the entry's life
    )
    with Cache(l2=later) as reader:
        assert reader.get("k") == 1
        entry = reader.l1.get_entry("k")
        assert entry is not None and 14 < entry.ttl <= 15


def test_fifty_concurrent_misses_load_once_across_instances(
    make_cache: Any, redis_url: str
) -> None:
    a, b = make_cache(redis_url), make_cache(redis_url)
    calls: list[str] = []
    start = threading.Barrier(50)

    def loader() -> str:
        calls.append("db")
        time.sleep(0.3)
        return "row"

    def request(cache: Cache) -> None:
        start.wait()
        assert cache.get_or_set("hot", loader) == "row"

    threads = [threading.Thread(target=request, args=(a if n % 2 else b,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["db"]


def test_fifty_concurrent_async_misses_load_once(make_cache: Any, redis_url: str) -> None:
    cache = make_cache(redis_url)
    calls: list[str] = []

    async def loader() -> str:
        calls.append("db")
        await asyncio.sleep(0.1)
        return "row"

    async def stampede() -> list[str]:
        return await asyncio.gather(*(cache.aget_or_set("hot", loader) for _ in range(50)))

    assert asyncio.run(stampede()) == ["row"] * 50
    assert calls == ["db"]


STAMPEDE_SCRIPT = """
import sys, threading, time
import redis
from app.core.cache import CacheConfig, build_cache

url, prefix = sys.argv[1], sys.argv[2]
# A generous socket timeout: this is about the lock, not about failing fast on a slow
# Redis (a timed-out call degrades to a local load, which a busy CI box can trigger).
cache = build_cache(CacheConfig(redis_url=url, key_prefix=prefix, socket_timeout=5.0))
counter = redis.Redis.from_url(url)
# Start together once both listeners are subscribed: a listener that subscribes later
# marks what was cached before as possibly stale (a gap), and a load that began before
# the gap is not stored; on a busy machine that made a second load, unrelated to the lock.
deadline = time.monotonic() + 20
while cache.health()["invalidation"] != "listening" and time.monotonic() < deadline:
    time.sleep(0.01)
counter.incr(prefix + ":ready")
while int(counter.get(prefix + ":ready") or 0) < 2 and time.monotonic() < deadline:
    time.sleep(0.005)
start_at = time.time() + 0.2

def loader():
    counter.incr(prefix + ":loads")
    time.sleep(0.5)
    return "row"

def request():
    time.sleep(max(0.0, start_at - time.time()))
    assert cache.get_or_set("hot", loader) == "row"

threads = [threading.Thread(target=request) for _ in range(25)]
for t in threads: t.start()
for t in threads: t.join()
cache.close()
"""


def test_a_stampede_in_two_processes_loads_once(redis_url: str, cache_prefix: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", STAMPEDE_SCRIPT, redis_url, cache_prefix], cwd=ROOT)
        for _ in range(2)
    ]
    assert [proc.wait(timeout=30) for proc in procs] == [0, 0]
    raw = redis.Redis.from_url(redis_url)
    try:
        loads = int(raw.get(f"{cache_prefix}:loads") or 0)
        raw.delete(f"{cache_prefix}:loads", f"{cache_prefix}:ready")
    finally:
        raw.close()
    assert loads == 1  # once per process at most; the Redis lock makes it once in all


def test_a_lock_left_by_a_dead_instance_only_delays_the_load(
    make_cache: Any, redis_url: str
) -> None:
    cache = make_cache(redis_url, lock_ttl=0.3)
    assert cache.l2.try_lock("k", 0.3) is not None  # taken by an instance that then died
    started = time.monotonic()
    assert cache.get_or_set("k", lambda: "loaded anyway") == "loaded anyway"
    assert 0.2 < time.monotonic() - started < 2


def test_redis_stopping_mid_test_leaves_calls_working_and_recovery_is_automatic(
    make_cache: Any, redis_proxy: Any, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    direct = make_cache(redis_url)
    cache = make_cache(redis_proxy.url, retry_interval=0.2)
    cache.set("stale-after-outage", "old")
    assert cache.get("stale-after-outage") == "old"
    with caplog.at_level(logging.WARNING, logger="app.core.cache"):
        redis_proxy.stop()
        assert eventually(lambda: cache.health()["invalidation"] == "down")
        assert len(cache.l1) == 0  # deaf to invalidations: L1 flushed rather than stale
        for n in range(30):
            assert cache.get_or_set(f"k{n % 3}", lambda n=n: n % 3) == n % 3
        cache.delete("stale-after-outage")  # cannot reach Redis: kept for replay
        assert cache.health()["redis"] == "down"
        assert cache.health()["pending_invalidations"] == 1
    outage_logs = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_logs) == 1
    assert direct.get("stale-after-outage") == "old"  # still in Redis for now

    redis_proxy.start()
    time.sleep(0.25)  # the retry interval
    assert eventually(lambda: cache.get("anything") is None and cache.health()["redis"] == "up")
    assert cache.health()["pending_invalidations"] == 0
    assert eventually(lambda: direct.l2.get_entry("stale-after-outage") is None)
    assert cache.channel.wait_connected(5)
    cache.set("after", 1)
    assert direct.get("after") == 1


def test_a_dropped_invalidation_channel_flushes_l1(
    make_cache: Any, redis_proxy: Any, redis_url: str
) -> None:
    writer = make_cache(redis_url)
    reader = make_cache(redis_proxy.url, retry_interval=0.2)
    writer.set("k", "v1")
    assert reader.get("k") == "v1"
    redis_proxy.stop()
    assert eventually(lambda: len(reader.l1) == 0)
    writer.set("k", "v2")  # published while reader is deaf
    redis_proxy.start()
    assert reader.channel.wait_connected(5)
    assert eventually(lambda: reader.get("k") == "v2")


def test_an_unreadable_invalidation_flushes_l1(make_cache: Any, redis_url: str) -> None:
    cache = make_cache(redis_url)
    cache.set("k", 1)
    assert cache.l1.get("k") == 1
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.publish(cache.channel.name, b"not json")
    finally:
        raw.close()
    assert eventually(lambda: len(cache.l1) == 0)
    assert cache.channel.connected  # still listening
    assert cache.get("k") == 1  # L2 was never the problem


def test_flask_caching_in_two_apps_shares_redis(redis_url: str, cache_prefix: str) -> None:
    calls: list[str] = []
    theirs = flask_caching.Cache()

    @theirs.memoize(60)
    def slow_square(n: int) -> int:
        calls.append(f"square {n}")
        return n * n

    def page() -> Response:
        calls.append("page")
        return Response("<p>hi</p>", status=201, headers={"X-Made": "once"})

    apps: list[Flask] = []
    for _ in range(2):
        app = Flask(__name__)
        app.config.update(
            CACHE_REDIS_URL=redis_url,
            CACHE_KEY_PREFIX=cache_prefix,
            CACHE_TYPE="app.core.cache.flask.FlaskCachingBackend",
        )
        theirs.init_app(app)
        app.add_url_rule("/page", view_func=theirs.cached(60)(page))
        apps.append(app)
    try:
        for app in apps:
            with app.app_context():
                assert slow_square(4) == 16
            served = app.test_client().get("/page")
            assert (served.status_code, served.data) == (201, b"<p>hi</p>")
            assert served.headers["X-Made"] == "once"
        assert calls == ["square 4", "page"]  # the second app read both from Redis
    finally:
        for app in apps:
            get_cache(app).close()


def test_close_stops_the_listener_thread(make_cache: Any, redis_url: str) -> None:
    cache = make_cache(redis_url)
    assert any(t.name.startswith("cache-invalidation") for t in threading.enumerate())
    cache.close()
    assert not any(t.name.startswith("cache-invalidation") for t in threading.enumerate())
