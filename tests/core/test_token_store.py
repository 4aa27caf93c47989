"""The active-token store's refresh-family operations, in memory and in Redis alike."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from app.core.token_store import MemoryTokenStore, RedisTokenStore, TokenStore
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


def test_consume_spends_a_token_once(store: TokenStore) -> None:
    store.add("a", 1, 60, family="f")
    assert store.consume("a", 2) == "unknown"  # someone else's: untouched
    assert store.status("a", 1) == "active"
    assert store.consume("a", 1) == "active"
    assert store.consume("a", 1) == "revoked" and store.status("a", 1) == "revoked"
    assert store.consume("never-issued", 1) == "unknown"


def test_racing_uses_of_one_token_see_it_active_once(store: TokenStore) -> None:
    store.add("race", 7, 60, family="f")
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(store.consume("race", 7))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == ["active"] + ["revoked"] * 7


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
