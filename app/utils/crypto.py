"""Password hashing and random tokens.

Hashes describe themselves (`pbkdf2_sha256$<iterations>$<salt>$<hash>`) so the
iteration count can be raised by configuration and old hashes upgraded at the
next successful login.

Hashing runs on a small pool of threads at a lower CPU priority: at 600,000
iterations one hash costs a core for about 0.4 s, and a burst of sign-ins must
not starve the page requests served beside it (see gunicorn.conf.py). The
request still waits for its hash; only the scheduler's preference changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

ALGORITHM = "pbkdf2_sha256"
SEED_ITERATIONS = 100_000  # what the original system used; still verifies
DEFAULT_ITERATIONS = 600_000  # OWASP ASVS 5.0 for PBKDF2-HMAC-SHA256
SALT_BYTES = 32


HASH_NICENESS = 5  # CFS weight 335 against 1024 at nice 0: pages get ~3x the CPU of a hash

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lower_priority() -> None:
    """Renice the calling pool thread (Linux schedules threads, so nice is per thread)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, 0) + HASH_NICENESS
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def _hash_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 2,
                thread_name_prefix="pbkdf2",
                initializer=_lower_priority,
            )
        return _pool


def _forget_pool() -> None:
    """A forked child (a gunicorn worker, an RQ work-horse) starts threads of its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _pbkdf2(password: str, salt: str, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()


def _derive(password: str, salt: str, iterations: int) -> str:
    """PBKDF2-SHA256 on the low-priority pool (hashlib releases the GIL meanwhile)."""
    return _hash_pool().submit(_pbkdf2, password, salt, iterations).result()


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Hash a password with PBKDF2-SHA256 and a fresh 32-byte salt."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_hex(SALT_BYTES)
    return f"{ALGORITHM}${iterations}${salt}${_derive(password, salt, iterations)}"


def parse_hash(encoded: str) -> tuple[int, str, str] | None:
    """Split a stored hash into (iterations, salt, hex digest), or None if malformed."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


def verify_password(password: str, encoded: str | None) -> bool:
    """Check a password against a stored hash in constant time."""
    parsed = parse_hash(encoded or "")
    if parsed is None:
        return False
    iterations, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, iterations), expected)


def needs_rehash(encoded: str | None, iterations: int) -> bool:
    """True when a stored hash uses fewer iterations than configured now."""
    parsed = parse_hash(encoded or "")
    return parsed is None or parsed[0] < iterations


def generate_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


_DUMMY_SALT = secrets.token_hex(SALT_BYTES)


def burn_verification_time(password: str, iterations: int) -> None:
    """Spend as long as a real verification, for users that do not exist."""
    hmac.compare_digest(_derive(password, _DUMMY_SALT, iterations), "0" * 64)
