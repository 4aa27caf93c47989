"""The tier role: what the Cache needs from a store below L1, so a fake can stand in for Redis."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, Protocol

TierName = Literal["l1", "l2"]

Clock = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back (`time.monotonic`, or a fake in tests)."""

FOREVER = math.inf
"""A TTL that never runs out (Flask-Caching's timeout 0)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached value with what is left of its life, in seconds, as the tier reports it."""

    value: Any
    ttl: float = FOREVER
    refresh_in: float = FOREVER
    """Seconds until one caller should recompute the value while the others keep using it."""
    tags: tuple[str, ...] = ()


class CacheTier(Protocol):
    """A store shared by instances (Redis in production, `MemoryCache` as the fake in tests).

    Backend failures never raise from these methods: a tier that cannot reach its
    backend says so through `available` and answers like an empty cache.
    """

    name: TierName

    @property
    def available(self) -> bool:
        """Whether the backend answered the last time it was asked."""

    def get_entry(self, key: str) -> Entry | None:
        """Return the live entry for `key`, or None."""

    def set_entry(self, key: str, entry: Entry) -> None:
        """Store `entry` for `entry.ttl` seconds and index it under its tags."""

    def add_entry(self, key: str, entry: Entry) -> bool:
        """Store `entry` only if `key` is absent; return whether it was stored."""

    def delete(self, keys: Collection[str]) -> None:
        """Drop these keys."""

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix`."""

    def delete_tag(self, tag: str) -> object:
        """Drop every key stored under `tag`."""

    def clear(self) -> None:
        """Drop everything this tier holds (within its namespace)."""

    def try_lock(self, key: str, ttl: float) -> str | None:
        """Take the short load lock for `key`: a token, or None while someone else holds it."""

    def release_lock(self, key: str, token: str) -> None:
        """Release the lock if `token` still owns it."""

    def is_locked(self, key: str) -> bool:
        """Whether someone holds the load lock for `key`."""

    def close(self) -> None:
        """Release connections."""
