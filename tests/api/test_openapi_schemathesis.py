"""`schemathesis run` against /api/v1/openapi.json, in-process, as part of the test suite.

The engine reads the document the app serves and runs its examples, coverage
(boundary and schema-breaking values) and fuzzing phases against every
operation, with a fresh token per request of the role the operation is for
(`admin` for admin routes, else `user`, who owns some items). Any 5xx, an
undocumented status code or content type, or a body that breaks the document
fails the test. The run is seeded and deterministic; SCHEMATHESIS_MAX_EXAMPLES
(default 25 per operation) digs deeper locally.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", minversion="4")

from flask import Flask  # noqa: E402
from schemathesis.engine import events  # noqa: E402

from app import create_app  # noqa: E402
from app.api.auth import auth_service  # noqa: E402
from app.api.openapi import OPERATIONS  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import User  # noqa: E402
from app.policy import declared_policy  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.factories import make_items, make_role_accounts  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


@pytest.fixture
def fuzz_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """Like the `app` fixture (PostgreSQL rolled back, or SQLite) but without rate limits."""
    if not os.environ.get("DATABASE_URL"):
        url = request.getfixturevalue("sqlite_url")
        app = create_app(make_settings(tmp_path, database_url=url, rate_limits_enabled=False))
        yield app
        db.dispose(app)
        return
    engine = request.getfixturevalue("pg_engine")
    url = request.getfixturevalue("pg_url")
    app = create_app(make_settings(tmp_path, database_url=url, rate_limits_enabled=False))
    connection = engine.connect()
    outer = connection.begin()
    db.bind_to(app, connection)
    yield app
    outer.rollback()
    connection.close()
    db.dispose(app)


@pytest.fixture
def fuzz_users(fuzz_app: Flask) -> dict[str, int]:
    """One account per role (ids by role), and a few items, most of them owned by `user`."""
    with fuzz_app.app_context(), db.transaction() as session:
        ids = make_role_accounts(session)
        for n, owner in enumerate(["user", "user", "admin", "user"], start=1):
            make_items(session, ids[owner], [(f"item {n}", str(n), "active")])
    return ids


def fresh_tokens(app: Flask, users: dict[str, int]) -> type:
    """An auth provider class: a new token per request, so logout cannot starve later ones."""
    admin_only = {
        (op.method.upper(), op.path)
        for op in OPERATIONS
        if declared_policy(app.view_functions[op.endpoint]) == "admin"
    }

    class FreshTokens:
        def get(self, case: Any, context: Any) -> str:
            """A token for `admin` on admin routes, for `user` everywhere else."""
            key = (case.operation.method.upper(), case.operation.path)
            role = "admin" if key in admin_only else "user"
            with app.test_request_context():
                user = db.session.get(User, users[role])
                assert user is not None
                return auth_service().issue(user).value

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return FreshTokens


def run_schemathesis(app: Flask, users: dict[str, int]) -> tuple[list[str], Counter[str]]:
    """Run every phase but stateful (no links in the document); failures, calls per operation."""
    config = schemathesis.Config.from_dict(
        {
            "seed": 20251125,
            "workers": 1,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "mode": "all",
                # the provider below sets real tokens; generated Authorization headers would not
                "with-security-parameters": False,
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    schema.auth(refresh_interval=None)(fresh_tokens(app, users))
    failures: list[str] = []
    calls: Counter[str] = Counter()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            calls[event.label or "?"] += len(event.recorder.interactions)
            for nodes in event.recorder.checks.values():
                failures.extend(
                    f"{event.label}: {node.name}: {node.failure_info.failure}\n"
                    f"{node.failure_info.code_sample}"
                    for node in nodes
                    if node.failure_info is not None
                )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event}")
    return failures, calls


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzz_app: Flask, fuzz_users: dict[str, int]
) -> None:
    failures, calls = run_schemathesis(fuzz_app, fuzz_users)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    # schemathesis leaves out the URL it loaded the document from
    documented = {
        f"{op.method.upper()} {op.path}" for op in OPERATIONS if op.path != "/openapi.json"
    }
    assert set(calls) == documented, f"not exercised: {documented - set(calls)}"
