"""The OpenAPI 3.1 document of /api/v1, generated from the pydantic schemas the views use.

`OPERATIONS` is the one table of what the API offers: path, method, the Flask
endpoint that serves it, and its query, body and response schemas. Security
and the 401/403 answers come from each view's declared `@policy`, so the
document cannot promise access the code refuses; tests/api/test_openapi.py
checks the table and the URL map name the same routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.api.auth import REFRESH_COOKIE
from app.api.payment_schemas import (
    PaymentCreate,
    PaymentDetail,
    PaymentListParams,
    PaymentOut,
    PaymentPage,
    RefundCreate,
)
from app.api.schemas import (
    ItemListParams,
    ItemPage,
    LoginRequest,
    PasswordChange,
    Problem,
    ProfilePatch,
    ReplayOut,
    TokenOut,
    UserListParams,
    UserOut,
    UserPage,
    WebhookDeliveryListParams,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookSecretOut,
)
from app.core.middleware import MAX_QUERY_BYTES
from app.models.base import MAX_ID
from app.policy import Policy, declared_policy, policy
from app.services.items import ItemCreate, ItemOut, ItemPatch
from app.services.webhook_payloads import PAYLOADS
from app.services.webhooks import EndpointCreate, EndpointPatch, ReplayWindow

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
PROBLEM_TYPE = "application/problem+json"
ERROR_TEXT = {
    400: "A query parameter is not valid (problem JSON names it).",
    401: "No valid bearer token.",
    403: "The token's role may not do this.",
    404: "No such resource (or not one the caller may change).",
    409: "The request conflicts with another resource or the resource's state.",
    414: f"The query string is longer than {MAX_QUERY_BYTES:,} bytes.",
    402: "The payment was declined (problem JSON names the decline).",
    422: "The request body is not valid (problem JSON lists each field).",
    429: "Too many attempts; see Retry-After.",
    503: "No payment provider could take the payment now; see Retry-After.",
}
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
PATH_PARAMS = {
    "item_id": ID_SCHEMA,
    "endpoint_id": ID_SCHEMA,
    "delivery_id": ID_SCHEMA,
    "payment_id": ID_SCHEMA,
}

REFRESH_COOKIE_PARAMETER = {
    "name": REFRESH_COOKIE,
    "in": "cookie",
    "required": False,
    "description": "The refresh token (HttpOnly, SameSite=Strict, Path=/api/v1/auth; Secure "
    "over HTTPS), set by login and by each refresh; a browser sends it by itself.",
    "schema": {"type": "string"},
}
SET_COOKIE_HEADER = {
    "description": f"`{REFRESH_COOKIE}`: the next refresh token (cleared by logout).",
    "schema": {"type": "string"},
}

Refs = dict[tuple[Any, JsonSchemaMode], dict[str, Any]]  # (model, mode) -> {"$ref": ...}

bp = Blueprint("api_openapi", __name__)


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One method on one path, and the schemas it speaks."""

    method: Literal["get", "post", "patch", "delete"]
    path: str  # OpenAPI template relative to /api/v1, e.g. /items/{item_id}
    endpoint: str  # the Flask endpoint serving it
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()  # besides those implied by policy, query, body and path
    error_text: Mapping[int, str] = field(default_factory=dict)  # this operation's own words
    location: bool = False  # a 201 with a Location header
    links: Mapping[str, str] = field(default_factory=dict)  # name -> operationId given its `id`
    reads_refresh_cookie: bool = False  # the HttpOnly refresh cookie comes with the request
    sets_refresh_cookie: bool = False  # the answer sets (or clears) it
    empty_answers: Mapping[int, str] = field(default_factory=dict)  # other 2xx, without a body

    @property
    def operation_id(self) -> str:
        return self.endpoint.rsplit(".", 1)[-1]


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="post",
        path="/auth/login",
        endpoint="api.api_auth.login",
        summary="Exchange email and password for a bearer token",
        tag="auth",
        body=LoginRequest,
        response=TokenOut,
        errors=(401, 429),
        sets_refresh_cookie=True,
    ),
    Operation(
        method="post",
        path="/auth/refresh",
        endpoint="api.api_auth.refresh",
        summary="Spend the refresh cookie for a new access token and the next cookie",
        tag="auth",
        response=TokenOut,
        errors=(401,),
        error_text={
            401: "An expired, revoked or reused refresh cookie (reuse ends the whole "
            "sign-in; a cookie sent again within REFRESH_GRACE_SECONDS of its use, as two "
            "tabs reloading together do, gets the same successor instead); the cookie is "
            "cleared."
        },
        empty_answers={204: "No refresh cookie came with the request: no sign-in to restore."},
        reads_refresh_cookie=True,
        sets_refresh_cookie=True,
    ),
    Operation(
        method="post",
        path="/auth/logout",
        endpoint="api.api_auth.logout",
        summary="Revoke this request's token and the sign-in of its refresh cookie",
        tag="auth",
        status=204,
        reads_refresh_cookie=True,
        sets_refresh_cookie=True,
    ),
    Operation(
        method="get",
        path="/me",
        endpoint="api.api_handlers.me",
        summary="The signed-in user",
        tag="me",
        response=UserOut,
    ),
    Operation(
        method="patch",
        path="/me",
        endpoint="api.api_handlers.update_me",
        summary="Change your name or email",
        tag="me",
        body=ProfilePatch,
        response=UserOut,
        errors=(409,),
        error_text={
            403: "A guest token, or a new email without the right `current_password`.",
            409: "Another account uses that email.",
        },
    ),
    Operation(
        method="post",
        path="/me/password",
        endpoint="api.api_handlers.change_password",
        summary="Change your password; a new token and refresh cookie come back",
        tag="me",
        body=PasswordChange,
        response=TokenOut,
        error_text={
            422: "A field is missing, the current password is wrong, the new one is too weak "
            "or the two new ones differ (problem JSON names each field)."
        },
        sets_refresh_cookie=True,
    ),
    Operation(
        method="get",
        path="/items",
        endpoint="api.api_items.list_items",
        summary="One page of items, sorted, searched and filtered",
        tag="items",
        query=ItemListParams,
        response=ItemPage,
    ),
    Operation(
        method="post",
        path="/items",
        endpoint="api.api_items.create_item",
        summary="Create an item owned by the caller",
        tag="items",
        body=ItemCreate,
        response=ItemOut,
        status=201,
        location=True,
        links={"GetItem": "get_item", "UpdateItem": "update_item", "DeleteItem": "delete_item"},
    ),
    Operation(
        method="get",
        path="/items/{item_id}",
        endpoint="api.api_items.get_item",
        summary="One item",
        tag="items",
        response=ItemOut,
    ),
    Operation(
        method="patch",
        path="/items/{item_id}",
        endpoint="api.api_items.update_item",
        summary="Change an item you own (admins: any item)",
        tag="items",
        body=ItemPatch,
        response=ItemOut,
    ),
    Operation(
        method="delete",
        path="/items/{item_id}",
        endpoint="api.api_items.delete_item",
        summary="Delete an item you own (admins: any item)",
        tag="items",
        status=204,
    ),
    Operation(
        method="get",
        path="/users",
        endpoint="api.api_users.list_users",
        summary="One page of accounts (admins only)",
        tag="users",
        query=UserListParams,
        response=UserPage,
    ),
    Operation(
        method="get",
        path="/webhooks",
        endpoint="api.api_webhooks.list_endpoints",
        summary="Every webhook endpoint (admins only)",
        tag="webhooks",
        response=WebhookEndpointList,
    ),
    Operation(
        method="post",
        path="/webhooks",
        endpoint="api.api_webhooks.create_endpoint",
        summary="Register an endpoint; the answer holds its signing secret, shown once",
        tag="webhooks",
        body=EndpointCreate,
        response=WebhookEndpointCreated,
        status=201,
        location=True,
    ),
    Operation(
        method="get",
        path="/webhooks/{endpoint_id}",
        endpoint="api.api_webhooks.get_endpoint",
        summary="One endpoint",
        tag="webhooks",
        response=WebhookEndpointOut,
    ),
    Operation(
        method="patch",
        path="/webhooks/{endpoint_id}",
        endpoint="api.api_webhooks.update_endpoint",
        summary="Change an endpoint's URL, events, description or enabled flag",
        tag="webhooks",
        body=EndpointPatch,
        response=WebhookEndpointOut,
    ),
    Operation(
        method="delete",
        path="/webhooks/{endpoint_id}",
        endpoint="api.api_webhooks.delete_endpoint",
        summary="Remove an endpoint and its messages",
        tag="webhooks",
        status=204,
    ),
    Operation(
        method="post",
        path="/webhooks/{endpoint_id}/rotate-secret",
        endpoint="api.api_webhooks.rotate_secret",
        summary="A new signing secret; the old one still signs for 24 hours",
        tag="webhooks",
        response=WebhookSecretOut,
    ),
    Operation(
        method="post",
        path="/webhooks/{endpoint_id}/test",
        endpoint="api.api_webhooks.send_test",
        summary="Send a webhook.test event to this endpoint",
        tag="webhooks",
        response=WebhookDeliveryOut,
        status=202,
    ),
    Operation(
        method="get",
        path="/webhooks/{endpoint_id}/deliveries",
        endpoint="api.api_webhooks.list_deliveries",
        summary="The endpoint's messages, newest first, with every attempt",
        tag="webhooks",
        query=WebhookDeliveryListParams,
        response=WebhookDeliveryPage,
    ),
    Operation(
        method="post",
        path="/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
        endpoint="api.api_webhooks.retry_delivery",
        summary="Send one message again, with the same webhook-id",
        tag="webhooks",
        response=WebhookDeliveryOut,
        status=202,
        errors=(409,),
    ),
    Operation(
        method="post",
        path="/webhooks/{endpoint_id}/replay",
        endpoint="api.api_webhooks.replay",
        summary="Send again every message created in a window (at most 31 days)",
        tag="webhooks",
        body=ReplayWindow,
        response=ReplayOut,
        status=202,
    ),
    Operation(
        method="post",
        path="/payments",
        endpoint="api.api_payments.create_payment",
        summary="Buy an item at its price (send an Idempotency-Key header to make retries safe)",
        tag="payments",
        body=PaymentCreate,
        response=PaymentOut,
        status=201,
        errors=(402, 503),
        location=True,
        error_text={403: "Guests cannot pay."},
    ),
    Operation(
        method="get",
        path="/payments",
        endpoint="api.api_payments.list_payments",
        summary="Your payments, newest first (admins: everyone's)",
        tag="payments",
        query=PaymentListParams,
        response=PaymentPage,
    ),
    Operation(
        method="get",
        path="/payments/{payment_id}",
        endpoint="api.api_payments.get_payment",
        summary="One payment with every provider call made for it",
        tag="payments",
        response=PaymentDetail,
    ),
    Operation(
        method="post",
        path="/payments/{payment_id}/refunds",
        endpoint="api.api_payments.refund_payment",
        summary="Refund all or part of a payment (admins only)",
        tag="payments",
        body=RefundCreate,
        response=PaymentDetail,
        status=201,
        errors=(409,),
        error_text={409: "The payment is not refundable now, or the provider refused."},
    ),
    Operation(
        method="get",
        path="/openapi.json",
        endpoint="api.api_openapi.openapi_document",
        summary="This document",
        tag="meta",
    ),
)


@bp.get("/openapi.json")
@policy("public")
def openapi_document() -> Response:
    """Serve the document (built once per app) so clients and schemathesis read one truth."""
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build_document(current_app)
    return jsonify(document)


def document_text(app: Flask) -> str:
    """The document as the React client's type generator reads it (frontend/openapi.json)."""
    return json.dumps(build_document(app), indent=2, ensure_ascii=False) + "\n"


def build_document(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for this app's API."""
    refs, components = _components()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        access = declared_policy(app.view_functions.get(op.endpoint))
        if access is None:
            raise LookupError(f"{op.endpoint} is not a view with a policy")
        paths.setdefault(op.path, {})[op.method] = _operation(op, access, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "App API",
            "version": "1",
            "description": "JSON API for the React client. Errors are RFC 9457 problem JSON. "
            "Text refuses control characters (tabs and line breaks only where a field is "
            "multi-line) and unpaired UTF-16 surrogates, which a `pattern` cannot name.",
        },
        "servers": [{"url": PREFIX}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "webhooks": {name: _webhook(name, ref) for name, ref in _event_refs(refs).items()},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _components() -> tuple[Refs, dict[str, Any]]:
    """Every body and response schema, with nested models collected under components."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
    for op in OPERATIONS:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        if op.response is not None:
            wanted[(op.response, "serialization")] = None
    for model in EVENT_MODELS.values():
        wanted[(model, "serialization")] = None
    refs, schema = models_json_schema(list(wanted), ref_template=REF)
    by_model: Refs = {(model, mode): ref for (model, mode), ref in refs.items()}
    return by_model, schema.get("$defs", {})


def _event_model(name: str, shapes: tuple[type[BaseModel], ...]) -> type[BaseModel]:
    """The whole payload of one event type: its type, when, and one of its `data` shapes."""
    data: Any = shapes[0] if len(shapes) == 1 else Union[shapes]  # noqa: UP007
    kind: Any = Literal[name]
    title = "".join(part.title() for part in re.split(r"[._]", name)) + "Event"
    return create_model(
        title,
        __doc__=f"The body of a {name} delivery.",
        type=(kind, ...),
        timestamp=(datetime, Field(description="When the event happened.")),
        data=(data, ...),
    )


EVENT_MODELS = {name: _event_model(name, shapes) for name, shapes in PAYLOADS.items()}
SIGNATURE_HEADERS = (
    ("webhook-id", "The message id: the same on every retry and replay; dedupe by it."),
    ("webhook-timestamp", "Unix seconds of this attempt; reject old ones."),
    (
        "webhook-signature",
        "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` (two during a "
        "secret rotation); verify with any Standard Webhooks library.",
    ),
)


def _event_refs(refs: Refs) -> dict[str, dict[str, Any]]:
    return {name: refs[(model, "serialization")] for name, model in EVENT_MODELS.items()}


def _webhook(name: str, ref: dict[str, Any]) -> dict[str, Any]:
    """What an endpoint subscribed to `name` receives (OpenAPI 3.1 `webhooks`)."""
    return {
        "post": {
            "operationId": name,
            "summary": f"{name}, signed per Standard Webhooks",
            "tags": ["webhooks"],
            "security": [],
            "parameters": [
                {"name": header, "in": "header", "required": True, "description": text}
                | {"schema": {"type": "string"}}
                for header, text in SIGNATURE_HEADERS
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
            "responses": {
                "2XX": {
                    "description": "Received. Any other answer is retried on the schedule; "
                    "410 Gone disables the endpoint; 429 and 503 may send Retry-After."
                }
            },
        }
    }


def _operation(op: Operation, access: Policy, refs: Refs) -> dict[str, Any]:
    """One operation object: parameters, body, responses and security."""
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": _responses(op, access, refs),
    }
    parameters = _path_parameters(op.path) + _query_parameters(op.query)
    if op.reads_refresh_cookie:
        parameters.append(REFRESH_COOKIE_PARAMETER)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if access == "public":
        out["security"] = []
    return out


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    """One optional `in: query` parameter per field of a query model, constraints included."""
    if model is None:
        return []
    out = []
    for name, prop in model.model_json_schema()["properties"].items():
        schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
        param = {"name": name, "in": "query", "required": False, "schema": schema}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _responses(op: Operation, access: Policy, refs: Refs) -> dict[str, Any]:
    """The success response plus every error this operation can answer."""
    success: dict[str, Any] = {"description": STATUS_TEXT[op.status]}
    if op.response is not None:
        schema = refs[(op.response, "serialization")]
        success["content"] = {"application/json": {"schema": schema}}
    elif op.status != 204:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    if op.location:
        success["description"] = "Created"
        success["headers"] = {
            "Location": {"description": "URL of the new resource", "schema": {"type": "string"}}
        }
    if op.sets_refresh_cookie:
        success["headers"] = {**success.get("headers", {}), "Set-Cookie": SET_COOKIE_HEADER}
    if op.links:
        success["links"] = {
            name: {"operationId": target, "parameters": {"item_id": "$response.body#/id"}}
            for name, target in op.links.items()
        }
    responses: dict[str, Any] = {str(op.status): success}
    for status, text in op.empty_answers.items():
        responses[str(status)] = {"description": text}
    problem = {PROBLEM_TYPE: {"schema": refs[(Problem, "serialization")]}}
    for status in sorted(_error_statuses(op, access)):
        text = op.error_text.get(status, ERROR_TEXT[status])
        responses[str(status)] = {"description": text, "content": problem}
    return responses


def _error_statuses(op: Operation, access: Policy) -> set[int]:
    """Errors implied by the declaration: who may call, and what can be invalid."""
    statuses = set(op.errors) | {414}  # any request may carry an oversized query string
    if access != "public":
        statuses.add(401)
    if access in ("write", "admin"):
        statuses.add(403)
    if op.query is not None:
        statuses.add(400)
    if op.body is not None:
        statuses.add(422)
    if "{" in op.path:
        statuses.add(404)
    return statuses
