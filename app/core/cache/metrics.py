"""Prometheus series for the cache; every tier and outcome is a label, so one dashboard fits all.

L1 hits are too cheap to count in Prometheus (an inc costs more than the hit), so
each Cache tallies them in a plain int and the ticker thread adds the tallies to
`app_cache_hits_total` about once a second.
"""

from __future__ import annotations

import os
import threading
import weakref

from prometheus_client import Counter, Gauge, Histogram

from app.core.cache.ticker import TICKER

HITS = Counter("app_cache_hits_total", "Cache lookups answered by a tier", ["tier"])
MISSES = Counter("app_cache_misses_total", "Cache lookups a tier could not answer", ["tier"])
LOADER_SECONDS = Histogram(
    "app_cache_loader_seconds",
    "Time spent computing values on a cache miss or early refresh",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVICTIONS = Counter(
    "app_cache_evictions_total", "Entries dropped by a tier on its own", ["tier", "reason"]
)
INVALIDATIONS = Counter(
    "app_cache_invalidations_total",
    "Invalidations applied, by kind (key, prefix, tag, all) and origin (local, remote, gap)",
    ["kind", "origin"],
)
STAMPEDE_WAITS = Counter(
    "app_cache_stampede_waits_total",
    "Callers that waited for another caller's load instead of running the loader",
    ["scope"],
)
ERRORS = Counter("app_cache_errors_total", "Cache backend operations that failed", ["tier"])
REDIS_UP = Gauge(
    "app_cache_redis_up",
    "1 when the L2 cache (Redis) answers, 0 when the app runs on L1 and loaders only",
    multiprocess_mode="livemin",
)

L1_HITS = HITS.labels(tier="l1")
L1_MISSES = MISSES.labels(tier="l1")
L2_HITS = HITS.labels(tier="l2")
L2_MISSES = MISSES.labels(tier="l2")
L2_ERRORS = ERRORS.labels(tier="l2")


class Tally:
    """A count in a plain int, bumped on the hit path; `exported` is the part Prometheus has."""

    __slots__ = ("__weakref__", "count", "exported")

    def __init__(self) -> None:
        self.count = 0
        self.exported = 0


_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()
_lock = threading.Lock()


def l1_hit_tally() -> Tally:
    """Return a new tally of L1 hits, exported by the ticker until it is garbage."""
    tally = Tally()
    with _lock:
        _TALLIES.add(tally)
    TICKER.start()
    return tally


def export_l1_hits() -> None:
    """Add every tally's hits since the last export to `app_cache_hits_total{tier="l1"}`."""
    with _lock:
        for tally in list(_TALLIES):
            count = tally.count
            if count > tally.exported:
                L1_HITS.inc(count - tally.exported)
                tally.exported = count


def _after_fork_in_child() -> None:
    """The parent exports the hits it counted; a child starts from what it inherited."""
    global _lock
    _lock = threading.Lock()
    for tally in list(_TALLIES):
        tally.exported = tally.count


TICKER.add_job(export_l1_hits)
os.register_at_fork(after_in_child=_after_fork_in_child)
