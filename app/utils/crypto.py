"""Password hashing and random tokens.

Hashes describe themselves (`pbkdf2_sha256$<iterations>$<salt>$<hash>`) so the
iteration count can be raised by configuration and old hashes upgraded at the
next successful login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALGORITHM = "pbkdf2_sha256"
SEED_ITERATIONS = 100_000  # what the original system used; still verifies
DEFAULT_ITERATIONS = 600_000  # OWASP ASVS 5.0 for PBKDF2-HMAC-SHA256
SALT_BYTES = 32


def _derive(password: str, salt: str, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()


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
