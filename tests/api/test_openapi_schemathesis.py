"""`schemathesis run` against /api/v1/openapi.json, in-process, as part of the test suite.

The engine reads the document the app serves and runs every phase (examples,
coverage with boundary and schema-breaking values, fuzzing, and the stateful
phase that follows the document's links from a created item) with every check
schemathesis has, with a fresh token per request of the role the operation is
for (`admin` for admin routes, else `user`, who owns some items). So besides
any 5xx, an undocumented status code, header or content type, or a body that
breaks the document, a mismatch in either direction fails the test: valid data
refused (positive_data_acceptance) or invalid data accepted
(negative_data_rejection). The run is seeded and deterministic;
SCHEMATHESIS_MAX_EXAMPLES (default 25 per operation) and
SCHEMATHESIS_STATEFUL_STEPS (default 10) dig deeper locally.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", minversion="4")

from flask import Flask  # noqa: E402
from schemathesis.engine import events  # noqa: E402

from app.api.auth import auth_service  # noqa: E402
from app.api.openapi import OPERATIONS  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import User  # noqa: E402
from app.payments import get_payment_service  # noqa: E402
from app.policy import declared_policy  # noqa: E402
from tests.factories import make_items, make_role_accounts  # noqa: E402
from tests.payments.memory_provider import MemoryProvider  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
STATEFUL_STEPS = int(os.environ.get("SCHEMATHESIS_STATEFUL_STEPS", "10"))
# A webhook URL's host is judged by what it resolves to (tests resolve no names) and a
# replay window by its order and length, a password change by the current password being
# right, a payment by its item existing and costing something, a refund by what is left of
# the payment: rules JSON Schema cannot state, so a schema-valid body may get 422 there.
# Every other check still runs on these operations.
JUDGED_BEYOND_SCHEMA = (
    "create_endpoint",
    "update_endpoint",
    "replay",
    "change_password",
    "create_payment",
    "refund_payment",
)
ACCEPTED = {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
STATEFUL = "stateful"  # scenarios of the stateful phase span operations: they have no label


@pytest.fixture
def fuzz_users(unlimited_app: Flask) -> dict[str, int]:
    """One account per role (ids by role), and a few items, most of them owned by `user`;
    payments go to a provider in memory."""
    get_payment_service(unlimited_app).factory.register(MemoryProvider())
    with unlimited_app.app_context(), db.transaction() as session:
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
    """Run every phase (stateful included) with every check; failures, calls per operation."""
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
            "phases": {"stateful": {"enabled": True, "max-steps": STATEFUL_STEPS}},
            "operations": [
                {"include-operation-id": name, "checks": {"positive_data_acceptance": ACCEPTED}}
                for name in JUDGED_BEYOND_SCHEMA
            ],
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    schema.auth(refresh_interval=None)(fresh_tokens(app, users))
    failures: list[str] = []
    calls: Counter[str] = Counter()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            calls[event.label or STATEFUL] += len(recorder.interactions)
            for case_id, nodes in recorder.checks.items():
                failures.extend(
                    _describe(event.label, node.name, node.failure_info, recorder, case_id)
                    for node in nodes
                    if node.failure_info is not None
                )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event.info.format()}")  # type: ignore[union-attr]
    return failures, calls


def _describe(label: str | None, check: str, info: Any, recorder: Any, case_id: str) -> str:
    """One failure: which check, what was sent and what came back."""
    interaction = recorder.interactions.get(case_id)
    answer = ""
    if interaction is not None and interaction.response is not None:
        response = interaction.response
        answer = f"\n-> {response.status_code} {response.content[:300]!r}"
    return f"{label or STATEFUL}: {check}: {info.failure.title}\n{info.code_sample}{answer}"


@pytest.fixture(autouse=True)
def _wsgi_probes_without_socket_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schemathesis 4 sends its auth probes (`ignored_auth`) through the WSGI transport
    without a session but with socket options werkzeug's client does not take
    (max_redirects, verify, ...); drop them there as it does for sessions."""
    from schemathesis.transport.wsgi import WSGI_TRANSPORT

    send = WSGI_TRANSPORT.send

    def send_in_process(case: Any, *, session: Any = None, **kwargs: Any) -> Any:
        if session is None:
            for name in ("max_redirects", "verify", "cert", "proxies"):
                kwargs.pop(name, None)
        return send(case, session=session, **kwargs)

    monkeypatch.setattr(WSGI_TRANSPORT, "send", send_in_process)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    unlimited_app: Flask, fuzz_users: dict[str, int]
) -> None:
    failures, calls = run_schemathesis(unlimited_app, fuzz_users)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    # schemathesis leaves out the URL it loaded the document from
    documented = {
        f"{op.method.upper()} {op.path}" for op in OPERATIONS if op.path != "/openapi.json"
    }
    assert set(calls) - {STATEFUL} == documented, f"not exercised: {documented - set(calls)}"
    assert calls[STATEFUL] > 0, "the stateful phase followed no links"
