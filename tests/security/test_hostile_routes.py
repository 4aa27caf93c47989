"""Every route, every parameter, every role: a hostile value never answers 5xx, and a
request that is refused (4xx) writes nothing.

The walk is built from the app itself: every rule of `app.url_map` with each of
its methods (CSRF is off, as in every test app, so POSTs reach their views), as
admin, user, guest and anonymous. Each hostile value goes, in turn, into every
path parameter (other parameters valid), into every query parameter a page or
the API reads, into every form field the pages read, and into every field of
the JSON body an API operation takes. The API's documented query parameters are
also tried one at a time: with all of them bad the answer is a 400 before any
query runs, while one bad value that validation lets through goes on to SQL.
"""

from __future__ import annotations

import json
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.routing import Rule

from app import web
from app.api.auth import auth_service
from app.api.openapi import OPERATIONS, PREFIX, build_document
from app.core.events import Actor, EventType
from app.core.netguard import Rules, parse_networks
from app.core.sql import SAFE_METHODS
from app.extensions import db
from app.models import AuditLog, Item, User, WebhookEndpoint
from app.models.base import utcnow
from app.models.payment import Payment
from app.services import webhooks
from app.services.items import ItemCreate
from app.web.tables import TableSpec
from tests.conftest import login
from tests.factories import make_user, seed_items


@dataclass(frozen=True)
class Hostile:
    """A value as it travels in a URL or form (`encoded`) and in a JSON string (`text`)."""

    label: str
    encoded: str
    text: str


def _plain(label: str, text: str) -> Hostile:
    return Hostile(label, quote(text, safe=""), text)


HOSTILE = (
    Hostile("lone surrogate", "%ED%A0%80", "\ud800"),
    Hostile("NUL", "%00", "\x00"),
    _plain("2**31", str(2**31)),
    _plain("40 nines", "9" * 40),
    _plain("superscript two", "²"),
    _plain("arabic-indic one", "١"),
    _plain("negative", "-" + "9" * 30),
    _plain("long", "x" * 1000),
    _plain("too long", "y" * 5000),
    _plain("not a number", "NaN"),
    _plain("header break", "\r\nSet-Cookie: pwned=1"),
    _plain("empty", ""),
)
ROLES = ("admin", "user", "guest", "anonymous")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}  # HEAD runs the GET view; OPTIONS is Flask's own
FORM_FIELDS = (
    *ItemCreate.model_fields,
    *("ids", "action", "scope", "role", "is_active", "email", "password", "confirm_password"),
    *("current_password", "new_password", "email_password", "remember", "next"),
)
REFUSALS_ON_RECORD = {EventType.USER_LOGIN_FAILED.value}  # a refused sign-in is audited


def _page_query_names() -> set[str]:
    """What the table pages (any TableSpec in app.web) and the sign-in page read from the
    query string."""
    modules = [import_module(f"app.web.{m.name}") for m in pkgutil.iter_modules(web.__path__)]
    specs = [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, TableSpec)
    ]
    assert specs, "no table pages found"
    filters = {name for spec in specs for name in spec.filters}
    return {"sort", "dir", "page", "per_page", "q", "cursor", "next", *filters}


def _api_query_names(app: Flask) -> dict[str, list[str]]:
    """The documented query parameters of each API operation, by Flask endpoint."""
    document = build_document(app)
    out: dict[str, list[str]] = {}
    for op in OPERATIONS:
        parameters = document["paths"][op.path][op.method].get("parameters", [])
        names = [p["name"] for p in parameters if p["in"] == "query"]
        if names:
            out[op.endpoint] = names
    return out


def _api_body_fields() -> dict[tuple[str, str], tuple[str, ...]]:
    """The JSON body fields of each API operation, by (Flask endpoint, METHOD)."""
    return {
        (op.endpoint, op.method.upper()): tuple(op.body.model_fields)
        for op in OPERATIONS
        if op.body is not None
    }


# --- what changed -----------------------------------------------------------------------


def _fingerprint(app: Flask) -> tuple[Any, ...]:
    """How many items, accounts, audit rows (refusals on record aside) and webhook endpoints
    there are, the newest of each and the latest change: any write moves one of them (one
    query). The outbox is left out: the jobs the walk's own webhook message starts write
    there in the background."""

    def summary(model: Any, *where: Any) -> list[Any]:
        columns = [func.count(), func.max(model.id)]
        if hasattr(model, "updated_at"):
            columns.append(func.max(model.updated_at))
        return [select(c).select_from(model).where(*where).scalar_subquery() for c in columns]

    with app.app_context():
        row = db.session.execute(
            select(
                *summary(Item),
                *summary(User),
                *summary(AuditLog, AuditLog.event_type.not_in(REFUSALS_ON_RECORD)),
                *summary(WebhookEndpoint),
            )
        ).one()
        return tuple(row)


# --- the walk ---------------------------------------------------------------------------


@dataclass
class Walk:
    app: Flask
    accounts: dict[str, int]
    valid_path: dict[str, str]
    api_query: dict[str, list[str]]
    api_body: dict[tuple[str, str], tuple[str, ...]]
    page_query: set[str]
    sent: int = 0

    def client(self, role: str) -> tuple[FlaskClient, dict[str, str]]:
        """A client signed in as `role` (pages), and its bearer header (API)."""
        client = self.app.test_client()
        if role == "anonymous":
            return client, {}
        assert login(client, f"{role}@example.com").status_code == 303
        with self.app.test_request_context():
            user = db.session.get(User, self.accounts[role])
            assert user is not None
            token = auth_service().issue(user).value
        return client, {"Authorization": f"Bearer {token}"}

    def requests(
        self, rule: Rule, method: str, *, signed_in: bool
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(label, keyword arguments of client.open) for every hostile request on one route."""
        api = rule.rule.startswith(PREFIX)
        query_names = self.api_query.get(rule.endpoint, []) if api else sorted(self.page_query)
        for value in HOSTILE:
            if rule.arguments:
                yield f"path={value.label}", self._request(rule, method, value, in_path=True)
            yield f"query={value.label}", self._request(rule, method, value, query=query_names)
            if api and signed_in and rule.endpoint in self.api_query:
                for name in query_names:  # alone, a value validation lets through reaches SQL
                    yield f"{name}={value.label}", self._request(rule, method, value, query=[name])

    def _request(
        self,
        rule: Rule,
        method: str,
        value: Hostile,
        *,
        in_path: bool = False,
        query: list[str] | None = None,
    ) -> dict[str, Any]:
        path = rule.rule
        for name in rule.arguments:
            filler = value.encoded if in_path else self.valid_path[name]
            path = re.sub(rf"<(?:[^:<>]+:)?{name}>", filler, path)
        if query:
            path += "?" + "&".join(f"{name}={value.encoded}" for name in query)
        request: dict[str, Any] = {"path": path, "method": method}
        fields = self.api_body.get((rule.endpoint, method))
        if fields is not None:
            request["data"] = json.dumps(dict.fromkeys(fields, value.text))
            request["content_type"] = "application/json"
        elif method == "POST":
            request["data"] = "&".join(f"{name}={value.encoded}" for name in FORM_FIELDS)
            request["content_type"] = "application/x-www-form-urlencoded"
        return request


@pytest.fixture
def walk(unlimited_app: Flask) -> Walk:
    """The app with one account per role, a victim account and an item the user owns."""
    app = unlimited_app
    with app.app_context(), db.transaction() as session:
        accounts = {
            role: make_user(session, f"{role}@example.com", role=role, name=role.title()).id
            for role in ("admin", "user", "guest")
        }
        victim = make_user(session, "victim@example.com", name="Victim").id
    (item_id,) = seed_items(app, accounts["user"], [("an item", "12.50", "active")])
    with app.app_context(), db.transaction() as session:  # never called: 127.0.0.1 is not
        endpoint = webhooks.create_endpoint(  # allowlisted in this app, so delivery refuses it
            session,
            webhooks.EndpointCreate(url="http://127.0.0.1:9/hooks", events=["item.created"]),
            Rules(allow_http=True, allowed=parse_networks("127.0.0.1/32")),
            actor=Actor(),
        )
        message = webhooks.owe(session, endpoint, "item.created", {"id": item_id}, now=utcnow())
        payment = Payment(  # a failed one: refunding it is refused before any provider is asked
            user_id=accounts["user"],
            item_id=item_id,
            item_name="an item",
            amount=1250,
            currency="usd",
            status="failed",
            idempotency_key="walk-payment",
        )
        session.add(payment)
        session.flush()
    return Walk(
        app=app,
        accounts=accounts,
        valid_path={
            "item_id": str(item_id),
            "user_id": str(victim),
            "token": "not-a-reset-token",
            "filename": "css/app.css",
            "endpoint_id": str(endpoint.id),
            "delivery_id": str(message.delivery_id),
            "payment_id": str(payment.id),
            "run_id": "1",
            "job_id": "no-such-job",
            "message_id": "1",
            "name": "no-such-message.eml",
            "path": "items",  # a React client route (/app/<path>)
        },
        api_query=_api_query_names(app),
        api_body=_api_body_fields(),
        page_query=_page_query_names(),
    )


@pytest.mark.parametrize("role", ROLES)
def test_hostile_values_in_every_parameter_of_every_route_never_5xx(walk: Walk, role: str) -> None:
    app = walk.app
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 30, "the walk found too few routes"
    problems: list[str] = []
    for rule in rules:
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            client, bearer = walk.client(role)  # signing in writes (an audit row)
            before = _fingerprint(app)
            for label, request in walk.requests(rule, method, signed_in=bool(bearer)):
                headers = bearer if rule.rule.startswith(PREFIX) else {}
                response = client.open(headers=headers, **request)
                response.get_data()  # a streamed body (the CSV export) could fail mid-way
                response.close()
                walk.sent += 1
                where = f"{role} {method} {rule.rule} {label}: {response.status_code}"
                if response.status_code >= 500:
                    problems.append(where)
                if method in SAFE_METHODS:
                    continue  # a GET that writes fails the request (tests/conftest.py)
                after = _fingerprint(app)
                if 400 <= response.status_code < 500 and after != before:
                    problems.append(f"{where} and it wrote")
                before = after
    assert not problems, "\n".join(problems)
    assert walk.sent > 500, walk.sent
