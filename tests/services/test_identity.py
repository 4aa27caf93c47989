"""The signed-in identity built from its cached snapshot (app/services/identity.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A new process (a gunicorn worker) whose first request finds the snapshot in the cache
# and so runs no query: the mappers are not configured yet when the User is made.
FRESH_PROCESS = """
from app.models.user import User
from app.services import identity

assert not User.__mapper__.configured
snapshot = {"id": 7, "email": "ada@example.com", "name": "Ada", "role": "user",
            "is_active": True, "auth_epoch": 2, "password_hash": "not a snapshot field"}
identity._snapshot = lambda session, user_id: snapshot if user_id == 7 else None
user = identity.identity(None, 7)
assert user is not None and user.get_id() == "7:2" and user.name == "Ada", user
assert user.can_write and not user.is_admin and user.is_active
assert user.password_hash is None  # only the snapshot's fields are filled
assert identity.identity(None, 8) is None
print("ok")
"""


def test_a_fresh_process_builds_the_identity_before_any_query() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
