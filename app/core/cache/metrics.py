"""Prometheus series for the cache; every tier and outcome is a label, so one dashboard fits all."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "Invalidations applied, by kind (key, prefix, tag, all) and origin (local, remote)",
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
