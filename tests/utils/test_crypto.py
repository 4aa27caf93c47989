"""Password hashes: self-describing PBKDF2, constant-time checks, upgrades of old hashes."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from app.utils import crypto
from app.utils.crypto import (
    DEFAULT_ITERATIONS,
    SEED_ITERATIONS,
    burn_verification_time,
    generate_token,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)


def test_hash_format_describes_itself() -> None:
    encoded = hash_password("s3cret-pass", iterations=1000)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000")
    assert len(salt) == 64 and len(digest) == 64  # 32-byte salt as hex, SHA-256 digest as hex
    assert hash_password("s3cret-pass", iterations=1000) != encoded  # a fresh salt each time


def test_default_iterations_follow_owasp() -> None:
    assert DEFAULT_ITERATIONS == 600_000
    parsed = parse_hash(hash_password("x" * 10))
    assert parsed is not None and parsed[0] == 600_000


def test_verify_accepts_right_and_refuses_wrong() -> None:
    encoded = hash_password("right-password", iterations=1000)
    assert verify_password("right-password", encoded)
    assert not verify_password("wrong-password", encoded)
    assert not verify_password("right-password", None)
    assert not verify_password("right-password", "md5$abc")
    assert not verify_password("right-password", "pbkdf2_sha256$x$y$z")


def test_seed_hashes_still_verify_and_ask_for_an_upgrade() -> None:
    legacy = hash_password("old-password", iterations=SEED_ITERATIONS)
    assert verify_password("old-password", legacy)
    assert needs_rehash(legacy, DEFAULT_ITERATIONS)
    assert not needs_rehash(
        hash_password("p" * 8, iterations=DEFAULT_ITERATIONS), DEFAULT_ITERATIONS
    )


def test_unknown_user_path_costs_as_much_as_a_real_check() -> None:
    encoded = hash_password("pw-pw-pw-pw", iterations=50_000)

    def median(fn) -> float:  # type: ignore[no-untyped-def]
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return sorted(runs)[2]

    real = median(lambda: verify_password("wrong", encoded))
    dummy = median(lambda: burn_verification_time("wrong", 50_000))
    assert 0.5 < dummy / real < 2.0


def test_generate_token_is_random_and_url_safe() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(
        len(t) >= 43
        and set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for t in tokens
    )


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_hashes_run_at_a_lower_cpu_priority_than_the_caller(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A burst of sign-ins must yield the CPU to the page requests served beside it."""
    seen: list[tuple[int, int]] = []
    real = crypto.hashlib.pbkdf2_hmac

    def spy(*args):  # type: ignore[no-untyped-def]
        me = threading.get_native_id()
        seen.append((me, os.getpriority(os.PRIO_PROCESS, me)))
        return real(*args)

    monkeypatch.setattr(crypto.hashlib, "pbkdf2_hmac", spy)
    encoded = hash_password("right-password", iterations=1000)
    assert verify_password("right-password", encoded)
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert len(seen) == 2
    assert all(tid != threading.get_native_id() for tid, _ in seen)
    assert all(nice == min(19, caller + crypto.HASH_NICENESS) for _, nice in seen)


def test_a_forked_child_hashes_on_a_pool_of_its_own() -> None:
    """Gunicorn forks its workers: the parent's pool threads do not exist in the child."""
    encoded = hash_password("right-password", iterations=1000)  # the parent's pool is up
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if hashing works here
        os._exit(0 if verify_password("right-password", encoded) else 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung hashing (the parent's pool was reused)")
