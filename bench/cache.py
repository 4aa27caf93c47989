"""Micro-benchmark of the cache tiers against their baselines, measured in the same run.

    REDIS_URL=redis://127.0.0.1:6379/0 python bench/cache.py [--rounds 25]

Prints the median cost per operation of: a plain dict lookup, an L1 hit, a raw
redis-py GET, an L2 hit and misses, then the ratios the cache is held to (an L1 hit
within 5x a dict lookup, an L2 hit within 1.5x a raw GET). Keys live under a
random prefix and are deleted at the end; nothing else in Redis is touched.
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
from collections.abc import Callable

from app.core.cache import Cache, CacheConfig, MemoryCache, build_cache, cached, set_default_cache
from app.core.cache.redis_tier import RedisCache, connect, namespace_for

Op = Callable[[int], None]  # runs the operation n times


def median_ns(op: Op, *, n: int, rounds: int) -> float:
    """Median over `rounds` of the per-operation time of `n` back-to-back runs."""
    op(min(n, 100))  # warm up
    samples = []
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            op(n)
            samples.append((time.perf_counter_ns() - start) / n)
    finally:
        gc.enable()
    return statistics.median(samples)


def memory_ops() -> dict[str, Op]:
    plain = {"user:42": {"id": 42}}
    cache = Cache()
    cache.set("user:42", {"id": 42})

    @cached(ttl=60, key_prefix="user")
    def get_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    set_default_cache(cache)
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

    return {
        "dict lookup d[k]": dict_subscript,
        "dict lookup d.get(k)": dict_get,
        "(context) empty function call": empty_call,
        "(context) functools.lru_cache hit": lru_cache_hit,
        "L1 hit  Cache.get": l1_hit,
        "L1 hit  @cached call": decorated_l1_hit,
    }


def redis_ops(url: str, prefix: str) -> tuple[dict[str, Op], Cache]:
    # L1 of size 0: every get goes to L2, which is what an L2 hit costs. The raw GET
    # uses the same client and pool, so the difference is the cache's own work.
    l2 = RedisCache(connect(url), namespace=namespace_for(prefix, 1))
    raw = l2.client
    below = Cache(l1=MemoryCache(max_entries=0), l2=l2, publish_events=False)
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

    ops = {
        "raw redis-py GET": raw_get,
        "L2 hit  Cache.get": l2_hit,
        "miss    Cache.get (L1+L2)": lookup_miss,
        "miss    get_or_set (lock, load, SET)": load_miss,
    }
    return ops, below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, float] = {}
    for name, op in memory_ops().items():
        results[name] = median_ns(op, n=20_000, rounds=args.rounds)
    ops, below = redis_ops(args.redis_url, prefix)
    try:
        for name, op in ops.items():
            results[name] = median_ns(op, n=300, rounds=args.rounds)
    finally:
        cleanup = build_cache(
            CacheConfig(redis_url=args.redis_url, key_prefix=prefix, publish_events=False)
        )
        cleanup.clear()
        cleanup.close()
        below.close()
    report(results)


def report(results: dict[str, float]) -> None:
    print(f"{'operation (median per op)':40} {'time':>12}")
    for name, ns in results.items():
        shown = f"{ns:,.0f} ns" if ns < 10_000 else f"{ns / 1000:,.1f} us"
        print(f"{name:40} {shown:>12}")
    l1 = results["L1 hit  Cache.get"]
    l2, raw = results["L2 hit  Cache.get"], results["raw redis-py GET"]
    print()
    for base in ("dict lookup d[k]", "dict lookup d.get(k)"):
        ratio = l1 / results[base]
        print(
            f"L1 hit / {base:22} {ratio:5.2f}x  (target <= 5x: {'met' if ratio <= 5 else 'MISSED'})"
        )
    ratio = l2 / raw
    verdict = "met" if ratio <= 1.5 else "MISSED"
    print(f"L2 hit / raw GET {'':14} {ratio:5.2f}x  (target <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
