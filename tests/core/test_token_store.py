"""The active-token store's refresh-family operations (rotation, the grace window,
revocation), in memory and in Redis alike."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from app.core.token_store import MemoryTokenStore, RedisTokenStore, Rotation, TokenStore
from tests.conftest import require


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[TokenStore]:
    if request.param == "memory":
        yield MemoryTokenStore()
        return
    client = redis.Redis.from_url(require("REDIS_URL"))
    prefix = f"test-store-{uuid.uuid4().hex[:8]}"
    yield RedisTokenStore(client, prefix)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def next_of(jti: str, *, grace: int = 5, family: str = "f") -> Rotation:
    return Rotation(
        next_jti=f"{jti}-next",
        ttl_seconds=600,
        family=family,
        note=f"note of {jti}",
        grace_seconds=grace,
    )


def test_rotate_spends_a_token_once_and_adds_its_successor(store: TokenStore) -> None:
    store.add("a", 1, 60, family="f")
    assert store.rotate("a", 2, next_of("a")) == ("unknown", None)  # someone else's: untouched
    assert store.status("a", 1) == "active" and store.status("a-next", 2) == "unknown"
    assert store.rotate("a", 1, next_of("a")) == ("active", None)
    assert store.status("a", 1) == "revoked" and store.status("a-next", 1) == "active"
    assert store.rotate("never-issued", 1, next_of("x")) == ("unknown", None)
    assert store.revoke_family("f") == 2  # the successor joined the family


def test_a_second_use_within_the_grace_window_gets_the_note(store: TokenStore) -> None:
    store.add("a", 1, 60, family="f")
    store.rotate("a", 1, next_of("a"))
    assert store.rotate("a", 1, next_of("a-again")) == ("revoked", "note of a")
    assert store.status("a-again-next", 1) == "unknown"  # no second successor
    store.add("b", 1, 60, family="f")
    store.rotate("b", 1, next_of("b", grace=0))  # no window at all
    assert store.rotate("b", 1, next_of("b-again")) == ("revoked", None)


def test_the_grace_note_expires() -> None:
    now = [100.0]
    store = MemoryTokenStore(clock=lambda: now[0])
    store.add("a", 1, 60, family="f")
    store.rotate("a", 1, next_of("a", grace=5))
    now[0] += 4.9
    assert store.rotate("a", 1, next_of("a2")) == ("revoked", "note of a")
    now[0] += 0.2
    assert store.rotate("a", 1, next_of("a3")) == ("revoked", None)


def test_racing_uses_of_one_token_see_it_active_once(store: TokenStore) -> None:
    store.add("race", 7, 60, family="f")
    seen: list[tuple[str, str | None]] = []
    threads = [
        threading.Thread(target=lambda n=n: seen.append(store.rotate("race", 7, next_of(f"{n}"))))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [note for found, note in seen if found == "active"]
    losers = {note for found, note in seen if found == "revoked"}
    assert len(winners) == 1 and len(losers) == 1 and len(seen) == 8
    (note,) = losers  # every later use sees the one rotation that won
    assert store.status(note.removeprefix("note of ") + "-next", 7) == "active"


def test_revoke_family_ends_its_tokens_only(store: TokenStore) -> None:
    store.add("r1", 1, 600, family="f1")
    store.add("access", 1, 60, family="f1")
    store.add("r2", 1, 600, family="f2")
    store.add("plain", 1, 60)
    assert store.revoke_family("f1") == 2
    assert [store.status(j, 1) for j in ("r1", "access", "r2", "plain")] == [
        "revoked",
        "revoked",
        "active",
        "active",
    ]
    assert store.revoke_family("f1") == 0


def test_revoke_user_reaches_family_tokens(store: TokenStore) -> None:
    store.add("r", 3, 600, family="f")
    store.add("a", 3, 60, family="f")
    assert store.revoke_user(3) == 2
    assert store.status("r", 3) == store.status("a", 3) == "revoked"


def test_redis_indexes_outlive_their_longest_token() -> None:
    client = redis.Redis.from_url(require("REDIS_URL"))
    prefix = f"test-store-{uuid.uuid4().hex[:8]}"
    store = RedisTokenStore(client, prefix)
    try:
        store.add("refresh", 5, 7 * 86400, family="fam")
        store.add("access", 5, 3600, family="fam")  # shorter: must not shorten the indexes
        for index in (f"{prefix}:user-tokens:5", f"{prefix}:token-family:fam"):
            assert client.ttl(index) > 6 * 86400
    finally:
        client.delete(*client.scan_iter(f"{prefix}:*"))
