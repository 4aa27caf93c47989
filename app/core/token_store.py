"""Active-token store: which API tokens (by `jti`) are still valid, and for whom.

Redis when configured (entries expire with their token and every process
sees the same set), a dict in embedded mode. Each entry holds the id of the
user the token was issued to, and a token counts as active only for that
user: one whose `sub` names someone else is refused even if its `jti` is live
(defence in depth should the signing key ever leak). Revoking leaves a
tombstone until the token would have expired, so the API can tell a revoked
token ("revoked") from one the store no longer knows, e.g. after Redis lost
its data ("expired, sign in again").

Refresh tokens live here too, grouped in families (one per sign-in): `rotate`
spends a token and registers its successor atomically, so of two uses of the
same one exactly one sees it "active". The rotation leaves a note (the
successor, as its owner chooses to describe it) beside the spent token for a
short grace window: a second use inside it (two tabs reloading together) gets
the note back and can be answered with the same successor; a use after it is a
reuse, and `revoke_family` ends every token of that sign-in, access tokens
issued by refreshing included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import redis

TokenStatus = Literal["active", "revoked", "unknown"]
REVOKED = "revoked"


@dataclass(frozen=True, kw_only=True)
class Rotation:
    """The successor of a spent refresh token, and the note its grace window keeps."""

    next_jti: str
    ttl_seconds: int
    family: str
    note: str
    grace_seconds: int


class TokenStore(Protocol):
    """Where issued token ids live until they expire or are revoked."""

    def add(self, jti: str, user_id: int, ttl_seconds: int, *, family: str | None = None) -> None:
        """Register a token (as part of a refresh family, when given)."""
        ...

    def status(self, jti: str, user_id: int) -> TokenStatus: ...

    def rotate(self, jti: str, user_id: int, rotation: Rotation) -> tuple[TokenStatus, str | None]:
        """Atomically: if `jti` is active, revoke it, add its successor and keep the note
        for the grace window. Answer what `jti` was before and, when it was already spent,
        the note of its rotation if the window is still open."""
        ...

    def revoke(self, jti: str) -> None: ...
    def revoke_family(self, family: str) -> int: ...
    def revoke_user(self, user_id: int) -> int: ...


class MemoryTokenStore:
    """In-process store for the embedded default and unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[str, tuple[int | None, float]] = {}  # user id, None once revoked
        self._families: dict[str, set[str]] = {}
        self._notes: dict[str, tuple[str, float]] = {}  # spent jti: successor note, until
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, jti: str, user_id: int, ttl_seconds: int, *, family: str | None = None) -> None:
        with self._lock:
            self._add(jti, user_id, ttl_seconds, family)

    def _add(self, jti: str, user_id: int, ttl_seconds: int, family: str | None) -> None:
        self._tokens[jti] = (user_id, self._clock() + ttl_seconds)
        if family is not None:
            self._families.setdefault(family, set()).add(jti)

    def status(self, jti: str, user_id: int) -> TokenStatus:
        with self._lock:
            return self._status(jti, user_id)

    def rotate(self, jti: str, user_id: int, rotation: Rotation) -> tuple[TokenStatus, str | None]:
        with self._lock:
            found = self._status(jti, user_id)
            if found != "active":
                note, until = self._notes.get(jti, (None, 0.0))
                return found, note if until > self._clock() else None
            self._tokens[jti] = (None, self._tokens[jti][1])
            self._add(rotation.next_jti, user_id, rotation.ttl_seconds, rotation.family)
            self._notes[jti] = (rotation.note, self._clock() + rotation.grace_seconds)
            return found, None

    def _status(self, jti: str, user_id: int) -> TokenStatus:
        """The token's state; the caller holds the lock."""
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

    def revoke_family(self, family: str) -> int:
        with self._lock:
            doomed = [jti for jti in self._families.pop(family, set()) if jti in self._tokens]
            for jti in doomed:
                self._tokens[jti] = (None, self._tokens[jti][1])
            return len(doomed)

    def revoke_user(self, user_id: int) -> int:
        with self._lock:
            doomed = [jti for jti, (uid, _) in self._tokens.items() if uid == user_id]
            for jti in doomed:
                self._tokens[jti] = (None, self._tokens[jti][1])
            return len(doomed)


# Only if the token is live for this user: tombstone it, add its successor to the user's
# and the family's indexes (which only ever grow their TTL, as in `add`) and keep the
# note for the grace window. Answer what the token was, and an earlier rotation's note.
# KEYS: token, successor, note, user index, family index
# ARGV: user id, tombstone, successor TTL, successor jti, note, grace seconds
_ROTATE = """
local value = redis.call('GET', KEYS[1])
if value ~= ARGV[1] then return {value or '', redis.call('GET', KEYS[3]) or ''} end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
for _, index in ipairs({KEYS[4], KEYS[5]}) do
  redis.call('SADD', index, ARGV[4])
  redis.call('EXPIRE', index, ARGV[3], 'NX')
  redis.call('EXPIRE', index, ARGV[3], 'GT')
end
if tonumber(ARGV[6]) > 0 then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6]) end
return {value, ''}
"""


class RedisTokenStore:
    """Shared store: `<prefix>:token:<jti>` with the token's TTL, plus per-user and
    per-family indexes that live as long as their longest-lived token."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._rotate = client.register_script(_ROTATE)

    def _key(self, jti: str) -> str:
        return f"{self._prefix}:token:{jti}"

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}:user-tokens:{user_id}"

    def _family_key(self, family: str) -> str:
        return f"{self._prefix}:token-family:{family}"

    def add(self, jti: str, user_id: int, ttl_seconds: int, *, family: str | None = None) -> None:
        pipe = self._redis.pipeline()
        pipe.set(self._key(jti), user_id, ex=ttl_seconds)
        indexes = [self._user_key(user_id)]
        if family is not None:
            indexes.append(self._family_key(family))
        for index in indexes:
            pipe.sadd(index, jti)
            # An index must outlive its longest-lived token (a 24 h access token added
            # after a 7-day refresh token must not shorten it): set once, then only extend.
            pipe.expire(index, ttl_seconds, nx=True)
            pipe.expire(index, ttl_seconds, gt=True)
        pipe.execute()

    def status(self, jti: str, user_id: int) -> TokenStatus:
        return _status_of(self._redis.get(self._key(jti)), user_id)

    def rotate(self, jti: str, user_id: int, rotation: Rotation) -> tuple[TokenStatus, str | None]:
        keys = [
            self._key(jti),
            self._key(rotation.next_jti),
            f"{self._prefix}:token-note:{jti}",
            self._user_key(user_id),
            self._family_key(rotation.family),
        ]
        args: list[str | int] = [
            user_id,
            REVOKED,
            rotation.ttl_seconds,
            rotation.next_jti,
            rotation.note,
            rotation.grace_seconds,
        ]
        stored, note = self._rotate(keys=keys, args=args)
        found = _status_of(stored or None, user_id)
        if isinstance(note, bytes):
            note = note.decode()
        return found, (note or None) if found != "active" else None

    def revoke(self, jti: str) -> None:
        """A tombstone with the token's remaining lifetime (nothing if it is already gone)."""
        self._redis.set(self._key(jti), REVOKED, xx=True, keepttl=True)

    def revoke_family(self, family: str) -> int:
        return self._revoke_index(self._family_key(family))

    def revoke_user(self, user_id: int) -> int:
        return self._revoke_index(self._user_key(user_id))

    def _revoke_index(self, index: str) -> int:
        jtis = [j.decode() if isinstance(j, bytes) else str(j) for j in self._redis.smembers(index)]
        pipe = self._redis.pipeline()
        for jti in jtis:
            pipe.set(self._key(jti), REVOKED, xx=True, keepttl=True)
        pipe.delete(index)
        pipe.execute()
        return len(jtis)


def _status_of(stored: object, user_id: int) -> TokenStatus:
    """What a stored value (user id, tombstone or nothing) means for `user_id`."""
    if isinstance(stored, bytes):
        stored = stored.decode()
    if stored is None:
        return "unknown"
    if stored == REVOKED:
        return "revoked"
    return "active" if stored == str(user_id) else "unknown"
