"""Active-token store: which API tokens (by `jti`) are still valid, and for whom.

Redis when configured (entries expire with their token and every process
sees the same set), a dict in embedded mode. Each entry holds the id of the
user the token was issued to, and a token counts as active only for that
user: one whose `sub` names someone else is refused even if its `jti` is live
(defence in depth should the signing key ever leak). Revoking leaves a
tombstone until the token would have expired, so the API can tell a revoked
token ("revoked") from one the store no longer knows, e.g. after Redis lost
its data ("expired, sign in again").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

import redis

TokenStatus = Literal["active", "revoked", "unknown"]
REVOKED = "revoked"


class TokenStore(Protocol):
    """Where issued token ids live until they expire or are revoked."""

    def add(self, jti: str, user_id: int, ttl_seconds: int) -> None: ...
    def status(self, jti: str, user_id: int) -> TokenStatus: ...
    def revoke(self, jti: str) -> None: ...
    def revoke_user(self, user_id: int) -> int: ...


class MemoryTokenStore:
    """In-process store for the embedded default and unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[str, tuple[int | None, float]] = {}  # user id, None once revoked
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, jti: str, user_id: int, ttl_seconds: int) -> None:
        with self._lock:
            self._tokens[jti] = (user_id, self._clock() + ttl_seconds)

    def status(self, jti: str, user_id: int) -> TokenStatus:
        with self._lock:
            entry = self._tokens.get(jti)
            if entry is None:
                return "unknown"
            if entry[1] <= self._clock():
                del self._tokens[jti]
                return "unknown"
            if entry[0] is None:
                return "revoked"
            return "active" if entry[0] == user_id else "unknown"

    def revoke(self, jti: str) -> None:
        with self._lock:
            entry = self._tokens.get(jti)
            if entry is not None:
                self._tokens[jti] = (None, entry[1])

    def revoke_user(self, user_id: int) -> int:
        with self._lock:
            doomed = [jti for jti, (uid, _) in self._tokens.items() if uid == user_id]
            for jti in doomed:
                self._tokens[jti] = (None, self._tokens[jti][1])
            return len(doomed)


class RedisTokenStore:
    """Shared store: `<prefix>:token:<jti>` with the token's TTL, plus a per-user index."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, jti: str) -> str:
        return f"{self._prefix}:token:{jti}"

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}:user-tokens:{user_id}"

    def add(self, jti: str, user_id: int, ttl_seconds: int) -> None:
        pipe = self._redis.pipeline()
        pipe.set(self._key(jti), user_id, ex=ttl_seconds)
        pipe.sadd(self._user_key(user_id), jti)
        pipe.expire(self._user_key(user_id), ttl_seconds)
        pipe.execute()

    def status(self, jti: str, user_id: int) -> TokenStatus:
        stored = self._redis.get(self._key(jti))
        if isinstance(stored, bytes):
            stored = stored.decode()
        if stored is None:
            return "unknown"
        if stored == REVOKED:
            return "revoked"
        return "active" if stored == str(user_id) else "unknown"

    def revoke(self, jti: str) -> None:
        """A tombstone with the token's remaining lifetime (nothing if it is already gone)."""
        self._redis.set(self._key(jti), REVOKED, xx=True, keepttl=True)

    def revoke_user(self, user_id: int) -> int:
        jtis = [
            j.decode() if isinstance(j, bytes) else str(j)
            for j in self._redis.smembers(self._user_key(user_id))
        ]
        pipe = self._redis.pipeline()
        for jti in jtis:
            pipe.set(self._key(jti), REVOKED, xx=True, keepttl=True)
        pipe.delete(self._user_key(user_id))
        pipe.execute()
        return len(jtis)
