"""Progressive lockout after repeated sign-in failures.

Keyed on (account, client IP): an attacker elsewhere cannot lock a victim out
of their own network, and every lockout is temporary (doubling from 30 s up
to 15 minutes) and cleared by a successful sign-in.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

FREE_ATTEMPTS = 5
BASE_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60
WINDOW_SECONDS = 60 * 60


def lock_seconds(failures: int) -> int:
    """How long to lock after this many consecutive failures (0 while under the limit)."""
    if failures < FREE_ATTEMPTS:
        return 0
    seconds: int = BASE_LOCK_SECONDS * 2 ** (failures - FREE_ATTEMPTS)
    return min(seconds, MAX_LOCK_SECONDS)


class FailureThrottle(Protocol):
    """Counts failures per key and says how long the key must wait."""

    def retry_after(self, key: str) -> int: ...
    def record_failure(self, key: str) -> int: ...
    def reset(self, key: str) -> None: ...


class MemoryFailureThrottle:
    """Single-process throttle for the embedded default."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures, locked_until)
        self._lock = threading.Lock()
        self._clock = clock

    def retry_after(self, key: str) -> int:
        with self._lock:
            _, until = self._state.get(key, (0, 0.0))
        return max(0, math.ceil(until - self._clock()))

    def record_failure(self, key: str) -> int:
        with self._lock:
            failures = self._state.get(key, (0, 0.0))[0] + 1
            self._state[key] = (failures, self._clock() + lock_seconds(failures))
        return lock_seconds(failures)

    def reset(self, key: str) -> None:
        with self._lock:
            self._state.pop(key, None)


class RedisFailureThrottle:
    """Shared throttle: a failure counter and a lock key with a TTL."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def retry_after(self, key: str) -> int:
        ttl = int(self._redis.ttl(f"{self._prefix}:lock:{key}"))
        return max(0, ttl)

    def record_failure(self, key: str) -> int:
        count_key = f"{self._prefix}:failures:{key}"
        pipe = self._redis.pipeline()
        pipe.incr(count_key)
        pipe.expire(count_key, WINDOW_SECONDS)
        failures = int(pipe.execute()[0])
        seconds = lock_seconds(failures)
        if seconds:
            self._redis.set(f"{self._prefix}:lock:{key}", 1, ex=seconds)
        return seconds

    def reset(self, key: str) -> None:
        self._redis.delete(f"{self._prefix}:failures:{key}", f"{self._prefix}:lock:{key}")
