"""The cache without Redis: L1, keys, decorators, tiers (a MemoryCache stands in for L2), Flask."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import flask_caching
import pytest
from flask import Flask, Response
from prometheus_client import REGISTRY

import app.core.cache as cache_package
from app.core.cache import (
    FOREVER,
    Cache,
    CacheConfig,
    Entry,
    LocalHub,
    ManualClock,
    MemoryCache,
    UnstableKeyError,
    UnsupportedValueError,
    build_cache,
    cached,
    canonical,
    register_type,
    set_default_cache,
)
from app.core.cache.flask import EXTENSION_KEY, TwoTierCache, get_cache
from app.core.cache.serialization import dumps, loads
from app.core.cache.ticker import INTERVAL, TICKER, Ticker


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def two_instances(clock: ManualClock, **options: Any) -> tuple[Cache, Cache, MemoryCache, LocalHub]:
    """Two caches as two app instances would have them: own L1, shared (fake) L2 and channel."""
    shared = MemoryCache(name="l2", clock=clock)
    hub = LocalHub()

    def one() -> Cache:
        return Cache(
            l1=MemoryCache(clock=clock), l2=shared, channel=hub.channel(), clock=clock, **options
        )

    return one(), one(), shared, hub


# --- L1: MemoryCache -------------------------------------------------------------------


def test_lru_keeps_the_most_recently_used_and_evicts_the_least() -> None:
    l1 = MemoryCache(max_entries=3)
    for key in "abc":
        l1.set(key, key.upper())
    assert l1.get("a") == "A"  # a is now the most recent
    l1.set("d", "D")
    assert l1.keys() == ["c", "a", "d"]
    assert l1.get("b") is None


def test_entries_used_since_the_last_sweep_survive_eviction() -> None:
    # CLOCK (second chance): a hit sets a flag instead of reordering; the sweep spares
    # flagged entries once. Recently used entries survive, unused ones go oldest first.
    l1 = MemoryCache(max_entries=4)
    for key in "abcd":
        l1.set(key, key)
    l1.get("a")
    l1.get("c")
    l1.set("e", "e")
    l1.set("f", "f")
    assert sorted(l1.keys()) == ["a", "c", "e", "f"]
    l1.set("g", "g")  # the flags were spent: now a, the oldest, goes
    assert sorted(l1.keys()) == ["c", "e", "f", "g"]


def test_hits_through_the_cache_count_as_use_for_eviction() -> None:
    cache = Cache(l1=MemoryCache(max_entries=3))
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"
    assert cache.get_or_set("b", lambda: "reloaded") == "b"
    cache.set("d", "d")
    assert sorted(cache.l1.keys()) == ["a", "b", "d"]


def test_overwriting_a_key_never_evicts_another() -> None:
    l1 = MemoryCache(max_entries=2)
    l1.set("a", 1)
    l1.set("b", 2)
    l1.set("a", 3)
    assert sorted(l1.keys()) == ["a", "b"]
    assert l1.get("a") == 3


def test_lru_evicts_at_the_default_limit_of_1000_and_counts_it() -> None:
    l1 = MemoryCache()
    before = sample("app_cache_evictions_total", tier="l1", reason="capacity")
    for i in range(1001):
        l1.set(f"k{i}", i)
    assert len(l1) == 1000
    assert l1.get("k0") is None
    assert l1.get("k1") == 1
    assert sample("app_cache_evictions_total", tier="l1", reason="capacity") == before + 1


def test_entries_expire_after_their_own_ttl(clock: ManualClock) -> None:
    l1 = MemoryCache(clock=clock)
    l1.set("short", 1, ttl=10)
    l1.set("long", 2, ttl=60)
    clock.advance(9.999)
    assert l1.get("short") == 1
    clock.advance(0.001)
    assert l1.get("short") is None
    assert l1.get("long") == 2
    entry = l1.get_entry("long")
    assert entry is not None and entry.ttl == pytest.approx(50)
    clock.advance(50)
    assert l1.get("long") is None
    assert len(l1) == 0


def test_with_the_real_clock_entries_expire_on_time_give_or_take_a_tick() -> None:
    l1 = MemoryCache()
    start = time.monotonic()
    l1.set("brief", 1, ttl=0.2)
    assert l1.get("brief") == 1
    while l1.get("brief") is not None:  # the ticking thread may lag a busy machine a little
        assert time.monotonic() - start < 2.0, "the entry never expired"
        time.sleep(0.01)
    assert time.monotonic() - start >= 0.2 - INTERVAL


def test_the_coarse_clock_is_one_tick_ahead_of_the_real_one() -> None:
    for _ in range(20):
        before = time.monotonic()
        now = TICKER.now
        assert now >= before - 0.5  # the thread keeps up (generous: CI machines are busy)
        assert now <= time.monotonic() + INTERVAL
        time.sleep(INTERVAL / 2)


def test_a_clock_that_stopped_is_caught_up_and_restarted_by_writes() -> None:
    ticker = Ticker()  # never started: as if its thread had died a minute ago
    ticker.now -= 60
    exact = time.monotonic()
    ticker.catch_up(exact)
    try:
        assert ticker.now >= exact + ticker.interval
        assert ticker.running
    finally:
        ticker.stop()
    assert not ticker.running


def test_the_clock_ticks_again_in_a_forked_child() -> None:
    TICKER.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether the clock moves, then leave without pytest
        moving = False
        try:
            before = TICKER.now
            time.sleep(0.1)
            moving = TICKER.running and TICKER.now > before
        finally:
            os.write(write, b"1" if moving else b"0")
            os._exit(0)
    os.close(write)
    try:
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)


def test_a_zero_sized_l1_stores_nothing() -> None:
    l1 = MemoryCache(max_entries=0)
    l1.set("a", 1)
    assert l1.get("a") is None


def test_l1_survives_concurrent_readers_and_writers() -> None:
    l1 = MemoryCache(max_entries=50)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(3000):
                key = f"k{(i * seed) % 120}"
                if i % 3:
                    l1.get(key)
                else:
                    l1.set(key, i, ttl=1 + i % 5)
                if i % 500 == 0:
                    l1.delete_prefix("k1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(l1) <= 50


def test_delete_by_prefix_and_by_tag() -> None:
    l1 = MemoryCache()
    l1.set("user:1", 1, tags=("team:a",))
    l1.set("user:2", 2, tags=("team:b",))
    l1.set("item:1", 3, tags=("team:a",))
    l1.delete_prefix("user:")
    assert l1.keys() == ["item:1"]
    assert l1.delete_tag("team:a") == ["item:1"]
    assert len(l1) == 0


# --- keys ------------------------------------------------------------------------------


class Color(Enum):
    RED = "red"


@dataclass(frozen=True)
class Filter:
    q: str
    page: int = 1


class Account:
    def __init__(self, account_id: int) -> None:
        self.account_id = account_id

    def __cache_key__(self) -> int:
        return self.account_id


STABLE_ARGS = (
    "SELECT",
    42,
    1.5,
    True,
    None,
    b"\x00raw",
    [3, 1, 2],
    (1, "a"),
    {"b": 2, "a": [1, {"z": None}], 3: "int key"},
    {"pear", "apple", "fig"},
    frozenset({3, 1}),
    dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
    dt.date(2024, 5, 1),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("10.50"),
    Color.RED,
)


def test_keys_are_the_same_in_another_process_with_another_hash_seed() -> None:
    here = [canonical(value) for value in STABLE_ARGS]
    script = "from tests.core.test_cache import STABLE_ARGS, canonical\n" + (
        "print('\\n'.join(canonical(v) for v in STABLE_ARGS))"
    )
    root = Path(__file__).resolve().parents[2]
    there = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    ).stdout.splitlines()
    assert there == here


def test_keys_name_the_function_and_bind_arguments_by_name() -> None:
    @cached(key_prefix="user")
    def get_user(user_id: int, *, active: bool = True) -> int:
        return user_id

    key = get_user.cache_key(7)
    assert key == f"user:{__name__}.{get_user.__qualname__}:7,True"
    assert get_user.cache_key(user_id=7) == key
    assert get_user.cache_key(7, active=True) == key
    assert get_user.cache_key(7, active=False) != key


def test_unhashable_rich_and_custom_arguments_make_keys() -> None:
    @cached()
    def search(flt: Filter, who: Account, ids: list[int], extra: dict[str, Any]) -> None:
        return None

    key = search.cache_key(Filter("x"), Account(3), [1, 2], {"b": 1, "a": 2})
    assert "Filter<{'page':1,'q':'x'}>" in key
    assert "Account<3>" in key
    assert key == search.cache_key(Filter("x"), Account(3), [1, 2], {"a": 2, "b": 1})


def test_huge_arguments_are_digested_and_still_distinct() -> None:
    @cached()
    def report(rows: list[int]) -> None:
        return None

    one, two = report.cache_key(list(range(10_000))), report.cache_key(list(range(10_001)))
    assert len(one) < 200
    assert one != two


def test_arguments_without_a_stable_text_are_refused() -> None:
    @cached()
    def use(thing: object) -> None:
        return None

    with pytest.raises(UnstableKeyError, match="__cache_key__"):
        use.cache_key(object())


def test_self_is_left_out_of_method_keys() -> None:
    class Service:
        @cached()
        def total(self, n: int) -> int:
            return n

    assert Service.total.cache_key(Service(), 3) == Service.total.cache_key(Service(), 3)


# --- serialization ---------------------------------------------------------------------


def test_l2_values_round_trip_with_their_types() -> None:
    value = {
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "day": dt.date(2024, 1, 2),
        "at": dt.time(3, 4),
        "span": dt.timedelta(days=1, seconds=2, microseconds=3),
        "amount": Decimal("19.99"),
        "id": uuid.uuid4(),
        "pair": (1, (2, "x")),
        "set": {1, 2},
        "frozen": frozenset({"a"}),
        "bytes": b"\xff",
        7: [None, True, 1.25],
    }
    assert loads(dumps(value)) == value
    assert isinstance(loads(dumps(value))["pair"][1], tuple)


def test_unregistered_types_are_refused_and_registered_ones_accepted() -> None:
    @dataclass(frozen=True)
    class Money:
        cents: int

    with pytest.raises(UnsupportedValueError, match="register_type"):
        dumps(Money(5))
    register_type(Money, code=120, encode=lambda m: m.cents, decode=Money)
    assert loads(dumps([Money(5)])) == [Money(5)]
    with pytest.raises(ValueError, match="reserved"):
        register_type(Money, code=3, encode=lambda m: m.cents, decode=Money)


def test_embedded_mode_refuses_what_redis_would_refuse() -> None:
    cache = Cache()
    with pytest.raises(UnsupportedValueError):
        cache.set("k", object())


# --- tiers -----------------------------------------------------------------------------


def test_default_ttl_is_one_hour(clock: ManualClock) -> None:
    a, _, shared, _ = two_instances(clock)
    a.set("k", 1)
    entry = shared.get_entry("k")
    assert entry is not None and entry.ttl == pytest.approx(3600)


def test_a_miss_loads_once_and_fills_both_tiers(clock: ManualClock) -> None:
    a, _, shared, _ = two_instances(clock)
    calls: list[int] = []
    assert a.get_or_set("k", lambda: calls.append(1) or "v") == "v"
    assert a.get_or_set("k", lambda: calls.append(1) or "v") == "v"
    assert calls == [1]
    assert a.l1.get("k") == "v"
    assert shared.get("k") == "v"
    assert a.stats().l1_hits == 1
    assert a.stats().loads == 1


def test_another_instance_reads_l2_and_fills_its_own_l1(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.set("k", {"n": 1}, ttl=60)
    assert b.l1.get("k") is None
    assert b.get("k") == {"n": 1}
    assert b.stats().l2_hits == 1
    assert b.l1.get("k") == {"n": 1}


def test_l1_never_outlives_the_l2_entry_it_came_from(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.set("k", 1, ttl=60)
    clock.advance(45)
    assert b.get("k") == 1
    entry = b.l1.get_entry("k")
    assert entry is not None and entry.ttl == pytest.approx(15)
    clock.advance(15)
    assert b.get("k") is None


def test_get_returns_the_default_on_a_miss_everywhere(clock: ManualClock) -> None:
    a, _, _, _ = two_instances(clock)
    marker = object()
    assert a.get("absent", marker) is marker
    assert a.stats().l1_misses == 1
    assert a.stats().l2_misses == 1


def test_hits_and_misses_are_counted_per_tier(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    names = [("app_cache_hits_total", "l1"), ("app_cache_hits_total", "l2")]
    names += [("app_cache_misses_total", "l1"), ("app_cache_misses_total", "l2")]
    TICKER.run_jobs()  # other caches' batched hits are exported now, not inside our window
    before = {n: sample(n[0], tier=n[1]) for n in names}
    a.get_or_set("k", lambda: 1)  # l1 miss, l2 miss, load
    b.get("k")  # l1 miss, l2 hit
    for _ in range(64):
        b.get("k")  # l1 hits (exported in batches)
    b.stats()
    after = {n: sample(n[0], tier=n[1]) for n in names}
    assert after[("app_cache_misses_total", "l1")] - before[("app_cache_misses_total", "l1")] == 2
    assert after[("app_cache_misses_total", "l2")] - before[("app_cache_misses_total", "l2")] == 1
    assert after[("app_cache_hits_total", "l2")] - before[("app_cache_hits_total", "l2")] == 1
    assert after[("app_cache_hits_total", "l1")] - before[("app_cache_hits_total", "l1")] == 64


def test_batched_l1_hits_reach_prometheus_within_seconds_without_asking() -> None:
    cache = Cache()
    cache.set("k", 1)
    before = sample("app_cache_hits_total", tier="l1")
    for _ in range(10):
        cache.get("k")
    deadline = time.monotonic() + 5
    while sample("app_cache_hits_total", tier="l1") < before + 10:
        assert time.monotonic() < deadline, "the ticker did not export the hits"
        time.sleep(0.05)


def test_get_l1_answers_from_this_process_only(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.set("k", 1)
    assert b.get_l1("k", "absent") == "absent"  # in L2, not in b's L1
    assert b.stats().l1_misses == b.stats().l2_hits == 0
    assert a.get_l1("k") == 1
    assert a.stats().l1_hits == 1
    clock.advance(3600)
    assert a.get_l1("k") is None
    assert len(a.l1) == 0  # the expired entry was dropped on the way


def test_add_stores_only_when_absent(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    assert a.add("k", 1)
    assert not b.add("k", 2)
    assert b.get("k") == 1


# --- invalidation ------------------------------------------------------------------------


def test_invalidations_reach_the_other_instances_l1(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.set("user:1", 1, tags=["team:a"])
    a.set("user:2", 2)
    a.set("item:1", 3, tags=["team:a"])
    for key in ("user:1", "user:2", "item:1"):
        b.get(key)
    a.delete("user:2")
    assert b.l1.get("user:2") is None
    a.delete_tag("team:a")
    assert b.l1.keys() == []
    assert b.get("user:1") is None and b.get("item:1") is None


def test_delete_prefix_and_clear_reach_every_tier(clock: ManualClock) -> None:
    a, b, shared, _ = two_instances(clock)
    for key in ("user:1", "user:2", "item:1"):
        a.set(key, key)
        b.get(key)
    b.delete_prefix("user:")
    assert a.l1.keys() == ["item:1"]
    assert shared.keys() == ["item:1"]
    b.clear()
    assert len(a.l1) == len(b.l1) == len(shared) == 0


def test_a_set_elsewhere_drops_the_old_copy_from_l1(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.set("k", "old")
    assert b.get("k") == "old"
    a.set("k", "new")
    assert b.get("k") == "new"


def test_invalidations_are_counted_by_kind_and_origin(clock: ManualClock) -> None:
    a, b, _, hub = two_instances(clock)
    counted = [("tag", "local"), ("tag", "remote"), ("key", "local"), ("all", "gap")]
    before = {n: sample("app_cache_invalidations_total", kind=n[0], origin=n[1]) for n in counted}
    a.set("k", 1, tags=["t"])
    a.delete_tag("t")  # heard by b
    a.delete("k")
    hub.drop()  # each of a and b misses what comes next: a gap flushes its L1
    after = {n: sample("app_cache_invalidations_total", kind=n[0], origin=n[1]) for n in counted}
    assert {n: after[n] - before[n] for n in counted} == {
        ("tag", "local"): 1,
        ("tag", "remote"): 1,
        ("key", "local"): 1,
        ("all", "gap"): 2,
    }
    assert b.stats().remote_invalidations == 3  # the set, the tag and the key


def test_a_dropped_channel_flushes_l1_and_keeps_new_entries_brief(clock: ManualClock) -> None:
    a, b, _, hub = two_instances(clock, degraded_l1_ttl=5)
    a.set("k", 1, ttl=60)
    b.get("k")
    hub.drop()
    assert len(b.l1) == 0
    assert b.health()["invalidation"] == "down"
    b.get("k")
    entry = b.l1.get_entry("k")
    assert entry is not None and entry.ttl == pytest.approx(5)
    hub.restore()
    assert len(b.l1) == 0  # what we cached while deaf is dropped too


def test_a_load_that_straddles_an_invalidation_is_not_kept(clock: ManualClock) -> None:
    a, b, shared, _ = two_instances(clock)

    def loader() -> str:
        b.delete("k")  # another instance invalidates while we read the database
        return "maybe stale"

    assert a.get_or_set("k", loader) == "maybe stale"
    assert a.l1.get("k") is None
    assert shared.get("k") is None


def test_local_values_stay_in_this_process_and_load_once(clock: ManualClock) -> None:
    a, b, shared, _ = two_instances(clock)
    calls: list[int] = []
    for _ in range(3):
        assert a.get_or_set_local("page", lambda: calls.append(1) or "<html>", ttl=60) == "<html>"
    assert calls == [1]
    assert shared.get("page") is None  # never written to L2
    assert b.get("page") is None  # another instance renders its own
    clock.advance(61)
    a.get_or_set_local("page", lambda: calls.append(1) or "<html>", ttl=60)
    assert calls == [1, 1]  # expired after its TTL


def test_local_values_keep_to_their_memory_budget_least_recently_used_first() -> None:
    page = "x" * 1000
    size = sys.getsizeof(page)
    cache = Cache(local_budget=3 * size)
    for key in ("a", "b", "c"):
        cache.get_or_set_local(key, lambda: page, ttl=60)
    cache.get_or_set_local("a", lambda: "reloaded", ttl=60)  # a hit: "a" is now the newest
    cache.get_or_set_local("d", lambda: page, ttl=60)  # over budget: "b" goes
    assert [cache.l1.get(k) is not None for k in "abcd"] == [True, False, True, True]
    assert cache.local_keys.used == 3 * size
    cache.get_or_set_local("big", lambda: "y" * 1500, ttl=60)  # takes the room of two
    assert [cache.l1.get(k) is not None for k in ("a", "c", "d", "big")] == [
        False,
        False,
        True,
        True,
    ]
    assert cache.local_keys.used <= 3 * size


def test_local_values_are_dropped_by_invalidations_from_any_instance(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    a.get_or_set_local("page", lambda: "old", ttl=60, tags=["items"])
    b.delete_tag("items")  # a write on the other instance
    assert a.get_or_set_local("page", lambda: "new", ttl=60, tags=["items"]) == "new"
    a.delete_tag("items")
    assert a.get_or_set_local("page", lambda: "newer", ttl=60, tags=["items"]) == "newer"


def test_a_local_load_that_straddles_an_invalidation_is_not_kept(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)

    def render() -> str:
        b.delete_tag("items")  # another instance writes while we render
        return "maybe stale"

    assert a.get_or_set_local("page", render, ttl=60, tags=["items"]) == "maybe stale"
    assert a.l1.get("page") is None


def test_local_values_are_brief_while_invalidations_may_be_missed(clock: ManualClock) -> None:
    a, _, _, hub = two_instances(clock, degraded_l1_ttl=5)
    hub.drop()
    a.get_or_set_local("page", lambda: "html", ttl=60)
    entry = a.l1.get_entry("page")
    assert entry is not None and entry.ttl == pytest.approx(5)


# --- stampedes --------------------------------------------------------------------------


def test_fifty_concurrent_misses_run_the_loader_once() -> None:
    cache = Cache()
    calls: list[int] = []
    gate = threading.Event()

    def loader() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_set("k", loader)))
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let every thread reach the flight before the loader finishes
    gate.set()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert results == [42] * 50


def test_waiters_share_the_loaders_error() -> None:
    cache = Cache()
    gate = threading.Event()

    def loader() -> int:
        gate.wait(5)
        raise LookupError("db down")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_set("k", loader)
        except LookupError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join()
    assert len(errors) == 5
    assert cache.get("k") is None


def test_an_instance_waits_for_the_one_holding_the_load_lock(clock: ManualClock) -> None:
    shared = MemoryCache(name="l2")
    a, b = Cache(l2=shared), Cache(l2=shared)
    token = shared.try_lock("k", 5)  # instance a is loading
    assert token is not None

    def finish_elsewhere() -> None:
        time.sleep(0.1)
        a.set("k", "from a")
        shared.release_lock("k", token)

    threading.Thread(target=finish_elsewhere).start()
    calls: list[int] = []
    assert b.get_or_set("k", lambda: calls.append(1) or "from b") == "from a"
    assert calls == []


def test_early_refresh_recomputes_once_while_others_keep_the_value(clock: ManualClock) -> None:
    a, b, shared, _ = two_instances(clock)
    version = iter(range(1, 100))

    def load() -> int:
        return next(version)

    assert a.get_or_set("k", load, ttl=100, early_ttl=10) == 1
    clock.advance(11)
    token = shared.try_lock("k", 5)  # another instance is refreshing right now
    assert token is not None
    assert b.get_or_set("k", load, ttl=100, early_ttl=10) == 1
    shared.release_lock("k", token)
    assert b.get_or_set("k", load, ttl=100, early_ttl=10) == 2  # b refreshes
    assert a.get_or_set("k", load, ttl=100, early_ttl=10) == 2


def test_a_failed_early_refresh_serves_the_current_value(clock: ManualClock) -> None:
    a, _, _, _ = two_instances(clock)
    a.get_or_set("k", lambda: "good", ttl=100, early_ttl=10)
    clock.advance(11)

    def broken() -> str:
        raise RuntimeError("db hiccup")

    assert a.get_or_set("k", broken, ttl=100, early_ttl=10) == "good"


# --- decorators -------------------------------------------------------------------------


def test_sync_decorator_caches_and_invalidates(clock: ManualClock) -> None:
    cache = Cache(l1=MemoryCache(clock=clock))
    calls: list[int] = []

    @cached(ttl=dt.timedelta(minutes=30), key_prefix="user", cache=cache)
    def get_user(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        return {"id": user_id}

    assert get_user(1) == {"id": 1}
    assert get_user(1) == {"id": 1}
    assert get_user(2) == {"id": 2}
    assert calls == [1, 2]
    get_user.invalidate(1)
    get_user(1)
    get_user(2)
    assert calls == [1, 2, 1]
    clock.advance(30 * 60)
    get_user(2)
    assert calls == [1, 2, 1, 2]
    get_user.invalidate_all()
    get_user(1)
    assert calls == [1, 2, 1, 2, 1]
    assert get_user.__name__ == "get_user"


def test_none_results_are_cached_too() -> None:
    cache = Cache()
    calls: list[int] = []

    @cached(cache=cache)
    def find(n: int) -> None:
        calls.append(n)

    find(1)
    find(1)
    assert calls == [1]


def test_tags_can_be_computed_from_the_arguments() -> None:
    cache = Cache()

    @cached(cache=cache, tags=lambda user_id: [f"user:{user_id}"])
    def profile(user_id: int) -> str:
        return f"profile {user_id}"

    profile(1)
    profile(2)
    cache.delete_tag("user:1")
    assert cache.l1.keys() == [profile.cache_key(2)]


def test_hits_neither_compute_tags_nor_build_the_loader() -> None:
    cache = Cache()
    tag_calls: list[int] = []

    def tags(user_id: int) -> list[str]:
        tag_calls.append(user_id)
        return [f"user:{user_id}"]

    @cached(cache=cache, tags=tags)
    def profile(user_id: int) -> str:
        return f"profile {user_id}"

    for _ in range(5):
        assert profile(1) == "profile 1"
    assert tag_calls == [1]
    assert cache.stats().l1_hits == 4
    assert cache.stats().loads == 1


def test_remembered_keys_tell_equal_values_of_other_types_apart() -> None:
    cache = Cache()

    @cached(cache=cache)
    def kind(value: object) -> str:
        return type(value).__name__

    assert [kind(1), kind(1), kind(True), kind(1.0), kind("1"), kind(1)] == [
        "int",
        "int",
        "bool",
        "float",
        "str",
        "int",
    ]
    assert len({kind.cache_key(v) for v in (1, True, 1.0, "1", Decimal(1))}) == 5


def test_ignored_arguments_give_one_key_however_they_are_passed() -> None:
    @cached(ignore=("session",))
    def totals(session: object) -> int:
        return 1

    assert totals.cache_key(object()) == totals.cache_key(session=object())
    assert totals.cache_key(object()).endswith(".totals:")


def test_async_decorator_caches_shares_concurrent_misses_and_invalidates() -> None:
    cache = Cache()
    calls: list[int] = []

    @cached(ttl=60, key_prefix="user", cache=cache)
    async def get_user(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        await asyncio.sleep(0.05)
        return {"id": user_id}

    async def scenario() -> None:
        results = await asyncio.gather(*(get_user(1) for _ in range(50)))
        assert results == [{"id": 1}] * 50
        assert await get_user(1) == {"id": 1}
        get_user.invalidate(1)
        await get_user(1)

    asyncio.run(scenario())
    assert calls == [1, 1]
    assert asyncio.iscoroutinefunction(get_user)


def test_async_early_refresh_and_lock_wait_use_the_shared_tier(clock: ManualClock) -> None:
    a, b, _, _ = two_instances(clock)
    version = iter(range(1, 100))

    async def load() -> int:
        return next(version)

    async def scenario() -> list[int]:
        first = await a.aget_or_set("k", load, ttl=100, early_ttl=10)
        seen_by_b = await b.aget_or_set("k", load, ttl=100, early_ttl=10)
        clock.advance(11)
        refreshed = await b.aget_or_set("k", load, ttl=100, early_ttl=10)
        return [first, seen_by_b, refreshed]

    assert asyncio.run(scenario()) == [1, 1, 2]


def test_the_decorator_finds_the_cache_when_called(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    @cached()
    def double(n: int) -> int:
        calls.append(n)
        return n * 2

    with caplog.at_level(logging.WARNING):
        assert double(2) == 4
        assert double(2) == 4
    assert calls == [2, 2]  # no cache anywhere: runs uncached
    one_app, other_app = Flask("one"), Flask("other")
    TwoTierCache(one_app)
    TwoTierCache(other_app)
    with one_app.app_context():
        double(2)
        double(2)
    with other_app.app_context():
        double(2)
    assert calls == [2, 2, 2, 2]  # one load per app
    fallback = Cache()
    set_default_cache(fallback)
    double(3)
    double(3)
    assert calls[-1] == 3 and len(calls) == 5
    assert fallback.l1.keys() == [double.cache_key(3)]


class FlakyTier(MemoryCache):
    """A fake L2 that can go down: it then answers like an empty cache, as RedisCache does."""

    def __init__(self) -> None:
        super().__init__(name="l2")
        self.up = True
        self.callbacks: list[Any] = []

    @property
    def available(self) -> bool:
        return self.up

    def on_recover(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def recover(self) -> None:
        self.up = True
        for callback in self.callbacks:
            callback()

    def get_entry(self, key: str) -> Entry | None:
        return super().get_entry(key) if self.up else None

    def set_entry(self, key: str, entry: Entry) -> None:
        if self.up:
            super().set_entry(key, entry)

    def delete(self, keys: Any) -> None:
        if self.up:
            super().delete(keys)

    def clear(self) -> None:
        if self.up:
            super().clear()


def test_invalidations_redis_missed_are_replayed_when_it_is_back() -> None:
    tier = FlakyTier()
    cache = Cache(l2=tier)
    cache.set("k", "old")
    tier.up = False
    cache.delete("k")
    assert cache.get_or_set("other", lambda: "from the loader") == "from the loader"
    assert cache.health()["pending_invalidations"] == 1
    assert tier.get("k") == "old"  # Redis never heard of the delete
    tier.recover()
    assert tier.get("k") is None
    assert len(cache.l1) == 0  # what L1 gathered during the outage is dropped
    assert cache.health()["pending_invalidations"] == 0


def test_too_many_missed_invalidations_clear_everything_on_recovery() -> None:
    tier = FlakyTier()
    cache = Cache(l2=tier, max_pending=1)
    cache.set("a", 1)
    cache.set("b", 2)
    tier.up = False
    cache.delete("a")
    cache.delete("zzz")
    tier.recover()
    assert len(tier) == 0


# --- Redis unreachable (no server needed) -------------------------------------------------


def test_an_unreachable_redis_leaves_every_call_working(
    caplog: pytest.LogCaptureFixture, make_cache: Any
) -> None:
    cache = make_cache(None)
    cache.close()
    cache = build_cache(CacheConfig(redis_url="redis://127.0.0.1:1/0", key_prefix="unreachable"))
    try:
        with caplog.at_level(logging.WARNING, logger="app.core.cache"):
            assert [cache.get_or_set("k", lambda: "loaded") for _ in range(20)] == ["loaded"] * 20
            cache.set("other", 1)
            cache.delete("other")
            assert cache.get("other") is None
        assert cache.health()["redis"] == "down"
        assert sample("app_cache_redis_up") == 0
        downs = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(downs) == 1  # logged once, not per call
        assert cache.health()["pending_invalidations"] == 1
    finally:
        cache.close()


# --- Flask ----------------------------------------------------------------------------------


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(CACHE_KEY_PREFIX="t", CACHE_L1_MAX_ENTRIES=10, **config)
    return app


def test_init_app_reads_the_config_and_is_idempotent() -> None:
    app = make_app(CACHE_DEFAULT_TTL=dt.timedelta(minutes=5))
    extension = TwoTierCache()
    cache = extension.init_app(app)
    assert extension.init_app(app) is cache
    assert app.extensions[EXTENSION_KEY] is cache
    with app.app_context():
        assert get_cache() is cache
    assert cache.default_ttl == 300
    assert cache.l1.max_entries == 10
    assert cache.health() == {
        "redis": "disabled",
        "invalidation": "disabled",
        "l1_entries": 0,
        "l1_max_entries": 10,
        "pending_invalidations": 0,
    }


def test_only_the_flask_module_of_the_cache_imports_flask() -> None:
    # Services use @cached; what they reach of the cache must not need a web framework.
    flaskish = ("flask", "flask_caching", "app.core.cache.flask")
    for path in sorted(Path(cache_package.__file__).parent.glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found = {n for n in names if any(n == f or n.startswith(f + ".") for f in flaskish)}
        assert bool(found) == (path.name == "flask.py"), (path.name, found)
    # The same at run time, with a bare `app` package: app/__init__.py is the app's edge.
    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys, types\n"
        "sys.modules['app'] = bare = types.ModuleType('app')\n"
        f"bare.__path__ = ['{root}/app']\n"
        "from app.core.cache import cached\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'flask_caching')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    assert loaded.strip() == "[]"


def test_get_cache_without_init_app_says_what_to_do() -> None:
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match="init_app"):
        get_cache()


def test_flask_caching_stores_in_the_same_cache() -> None:
    app = make_app()
    ours = TwoTierCache().init_app(app)
    theirs = flask_caching.Cache(
        app, config={"CACHE_TYPE": "app.core.cache.flask.FlaskCachingBackend"}
    )
    calls: list[int] = []

    @theirs.memoize(60)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    @app.route("/page")
    @theirs.cached(60)
    def page() -> Response:
        calls.append(-1)
        return Response("hello", headers={"X-Made": "once"})

    with app.app_context():
        assert square(3) == 9 and square(3) == 9
        theirs.delete_memoized(square, 3)
        assert square(3) == 9
    client = app.test_client()
    first, second = client.get("/page"), client.get("/page")
    assert first.data == second.data == b"hello"
    assert second.headers["X-Made"] == "once"
    assert calls == [3, 3, -1]
    stored = ours.l1.keys()
    assert any(key.startswith("view/") for key in stored)
    theirs.clear()
    assert len(ours.l1) == 0


def test_flask_caching_timeouts_map_onto_ttls() -> None:
    app = make_app(CACHE_DEFAULT_TTL=120)
    theirs = flask_caching.Cache(
        app, config={"CACHE_TYPE": "app.core.cache.flask.FlaskCachingBackend"}
    )
    ours = get_cache(app)
    with app.app_context():
        theirs.set("default", 1)
        theirs.set("never", 1, timeout=0)
        theirs.set("short", 1, timeout=5)
    ttls = {
        key: (ours.l1.get_entry(key) or Entry(None)).ttl for key in ("default", "never", "short")
    }
    assert ttls["default"] == pytest.approx(120, abs=1)
    assert ttls["never"] == FOREVER
    assert ttls["short"] == pytest.approx(5, abs=1)
