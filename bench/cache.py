"""Micro-benchmark of the cache tiers against their baselines, measured in the same run.

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/cache.py [--rounds 31] [--no-redis]

Prints the median cost per operation of: a plain dict lookup, an L1 hit (`Cache.get`
and a `@cached` call, outside and inside an app context), a raw redis-py GET, an L2
hit and misses, then the ratios the cache is held to (an L1 hit within 5x a dict
lookup, an L2 hit within 1.5x a raw GET), PASS or MISS.

Operations that are compared are measured interleaved: round after round, each one
runs for about the same time (`--round-ms`), so a burst of load from other
processes lands on all of them alike instead of on whichever ran at that moment.
In-memory operations are timed in this thread's CPU time, which time spent
preempted by other processes does not inflate; Redis operations wait on the network,
so they are timed by the wall clock. The "best" column is the fastest round.

Keys live under a random prefix and are deleted at the end; nothing else in Redis
is touched.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask

from app.core.cache import Cache, CacheConfig, MemoryCache, build_cache, cached, set_default_cache
from app.core.cache.flask import TwoTierCache
from app.core.cache.redis_tier import RedisCache, connect, namespace_for

Op = Callable[[int], None]  # runs the operation n times
Timer = Callable[[], int]  # nanoseconds

L1_TARGET = 5.0
L2_TARGET = 1.5


def calibrate(op: Op, round_ns: float, timer: Timer) -> int:
    """How many runs of `op` take about `round_ns`."""
    n = 1
    while True:
        start = timer()
        op(n)
        elapsed = timer() - start
        if elapsed >= round_ns / 8 or n >= 1 << 24:
            return max(1, round(n * round_ns / max(elapsed, 1)))
        n *= 4


def measure(
    ops: dict[str, Op], *, rounds: int, round_ms: float, timer: Timer
) -> dict[str, tuple[float, float]]:
    """Median and best per-operation time of each op (ns), rounds interleaved across ops."""
    sizes = {name: calibrate(op, round_ms * 1e6, timer) for name, op in ops.items()}
    samples: dict[str, list[float]] = {name: [] for name in ops}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, op in ops.items():
                n = sizes[name]
                start = timer()
                op(n)
                samples[name].append((timer() - start) / n)
    finally:
        gc.enable()
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}


def memory_ops() -> dict[str, Op]:
    plain = {"user:42": {"id": 42}}
    cache = Cache()
    cache.set("user:42", {"id": 42})

    @cached(ttl=60, key_prefix="user")
    def get_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    set_default_cache(cache)
    get_user(42)

    app = Flask(__name__)  # as views call it: the Cache found through the app context
    app.config.update(CACHE_KEY_PREFIX="bench")
    TwoTierCache(app)
    with app.app_context():
        get_user(42)

    @functools.lru_cache(maxsize=1000)
    def memoized(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    def noop(key: str) -> None:
        return None

    def dict_subscript(n: int) -> None:
        for _ in itertools.repeat(None, n):
            plain["user:42"]

    def dict_get(n: int) -> None:
        for _ in itertools.repeat(None, n):
            plain.get("user:42")

    def empty_call(n: int) -> None:
        for _ in itertools.repeat(None, n):
            noop("user:42")

    def lru_cache_hit(n: int) -> None:
        for _ in itertools.repeat(None, n):
            memoized(42)

    def l1_hit(n: int) -> None:
        get = cache.get
        for _ in itertools.repeat(None, n):
            get("user:42")

    def decorated_l1_hit(n: int) -> None:
        for _ in itertools.repeat(None, n):
            get_user(42)

    def decorated_l1_hit_in_app(n: int) -> None:
        with app.app_context():
            for _ in itertools.repeat(None, n):
                get_user(42)

    return {
        "dict lookup d[k]": dict_subscript,
        "dict lookup d.get(k)": dict_get,
        "(context) empty function call": empty_call,
        "(context) functools.lru_cache hit": lru_cache_hit,
        "L1 hit  Cache.get": l1_hit,
        "L1 hit  @cached call": decorated_l1_hit,
        "L1 hit  @cached call, app context": decorated_l1_hit_in_app,
    }


@contextmanager
def redis_ops(url: str) -> Iterator[dict[str, Op]]:
    # L1 of size 0: every get goes to L2, which is what an L2 hit costs. The raw GET
    # uses the same client and pool, so the difference is the cache's own work.
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    l2 = RedisCache(connect(url), namespace=namespace_for(prefix, 1))
    raw = l2.client
    below = Cache(l1=MemoryCache(max_entries=0), l2=l2)
    below.set("user:42", {"id": 42, "name": "Ada", "roles": ["admin"]})
    full_key = f"{namespace_for(prefix, 1)}:user:42"
    fresh = itertools.count()

    def raw_get(n: int) -> None:
        for _ in itertools.repeat(None, n):
            raw.get(full_key)

    def l2_hit(n: int) -> None:
        for _ in itertools.repeat(None, n):
            below.get("user:42")

    def lookup_miss(n: int) -> None:
        for _ in itertools.repeat(None, n):
            below.get("absent")

    def load_miss(n: int) -> None:
        for _ in itertools.repeat(None, n):
            below.get_or_set(f"miss:{next(fresh)}", lambda: 1, ttl=60)

    try:
        yield {
            "raw redis-py GET": raw_get,
            "L2 hit  Cache.get": l2_hit,
            "miss    Cache.get (L1+L2)": lookup_miss,
            "miss    get_or_set (lock, load, SET)": load_miss,
        }
    finally:
        cleanup = build_cache(CacheConfig(redis_url=url, key_prefix=prefix))
        cleanup.clear()
        cleanup.close()
        below.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument(
        "--round-ms", type=float, default=2.0, help="wall time of one round of an in-memory op"
    )
    parser.add_argument("--no-redis", action="store_true", help="in-memory operations only")
    args = parser.parse_args()
    results = measure(
        memory_ops(), rounds=args.rounds, round_ms=args.round_ms, timer=time.thread_time_ns
    )
    if not args.no_redis:
        with redis_ops(args.redis_url) as ops:
            results |= measure(
                ops, rounds=args.rounds, round_ms=args.round_ms * 10, timer=time.perf_counter_ns
            )
    report(results)


def report(results: dict[str, tuple[float, float]]) -> None:
    print(f"{'operation (per op; in-memory: CPU time)':40} {'median':>10} {'best':>10}")
    for name, (median, best) in results.items():
        print(f"{name:40} {_duration(median):>10} {_duration(best):>10}")
    print()
    l1 = results["L1 hit  Cache.get"][0]
    for base in ("dict lookup d[k]", "dict lookup d.get(k)"):
        _verdict(f"L1 hit / {base}", l1 / results[base][0], L1_TARGET)
    if "raw redis-py GET" in results:
        l2, raw = results["L2 hit  Cache.get"][0], results["raw redis-py GET"][0]
        _verdict("L2 hit / raw redis-py GET", l2 / raw, L2_TARGET)


def _duration(ns: float) -> str:
    return f"{ns:,.0f} ns" if ns < 10_000 else f"{ns / 1000:,.1f} us"


def _verdict(label: str, ratio: float, target: float) -> None:
    verdict = "PASS" if ratio <= target else "MISS"
    print(f"{label:40} {ratio:5.2f}x  (median; target <= {target:g}x: {verdict})")


if __name__ == "__main__":
    main()
