"""JSON endpoints for administrators: webhook endpoints, their deliveries, retries and replay.

The same services as the admin pages; a URL that may not be called (private
network, plain http in production) answers 422 on `url`, like any bad field.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from app.api.schemas import (
    ReplayOut,
    WebhookDeliveryListParams,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookSecretOut,
    json_response,
    validate_body,
    validate_query,
)
from app.extensions import db
from app.models.base import utcnow
from app.policy import policy
from app.security import current_actor
from app.services import webhooks
from app.services.webhooks import EndpointCreate, EndpointPatch, ReplayWindow
from app.settings import get_settings

bp = Blueprint("api_webhooks", __name__, url_prefix="/webhooks")

ENDPOINT_URL = "/<int:endpoint_id>"


@bp.get("")
@policy("admin")
def list_endpoints() -> Response:
    """Every endpoint, oldest first."""
    endpoints = webhooks.list_endpoints(db.session)
    return json_response(
        WebhookEndpointList(items=[WebhookEndpointOut.model_validate(e) for e in endpoints])
    )


@bp.post("")
@policy("admin")
def create_endpoint() -> Response:
    """Register an endpoint; 201 with its secret, the only time it is shown."""
    fields = validate_body(EndpointCreate)
    with db.transaction() as session:
        endpoint = webhooks.create_endpoint(
            session, fields, get_settings().webhook_rules(), actor=current_actor()
        )
    response = json_response(WebhookEndpointCreated.model_validate(endpoint), status=201)
    response.headers["Location"] = url_for(".get_endpoint", endpoint_id=endpoint.id)
    return response


@bp.get(ENDPOINT_URL)
@policy("admin")
def get_endpoint(endpoint_id: int) -> Response:
    """One endpoint (without its secret)."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    return json_response(WebhookEndpointOut.model_validate(endpoint))


@bp.patch(ENDPOINT_URL)
@policy("admin")
def update_endpoint(endpoint_id: int) -> Response:
    """Change the URL, events, description or enabled flag."""
    changes = validate_body(EndpointPatch)
    with db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        webhooks.update_endpoint(session, endpoint, changes, get_settings().webhook_rules())
    return json_response(WebhookEndpointOut.model_validate(endpoint))


@bp.delete(ENDPOINT_URL)
@policy("admin")
def delete_endpoint(endpoint_id: int) -> Response:
    """Remove an endpoint and its messages; 204."""
    with db.transaction() as session:
        webhooks.delete_endpoint(session, webhooks.get_endpoint(session, endpoint_id))
    return Response(status=204)


@bp.post(f"{ENDPOINT_URL}/rotate-secret")
@policy("admin")
def rotate_secret(endpoint_id: int) -> Response:
    """A new secret; deliveries carry signatures by both for the next 24 hours."""
    with db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        webhooks.rotate_secret(session, endpoint, now=utcnow())
    return json_response(WebhookSecretOut.model_validate(endpoint, from_attributes=True))


@bp.post(f"{ENDPOINT_URL}/test")
@policy("admin")
def send_test(endpoint_id: int) -> Response:
    """Queue a `webhook.test` event to this endpoint; 202 with its delivery."""
    with db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        record = webhooks.send_test(session, endpoint, now=utcnow())
        out = WebhookDeliveryOut.of(record)
    return json_response(out, status=202)


@bp.get(f"{ENDPOINT_URL}/deliveries")
@policy("admin")
def list_deliveries(endpoint_id: int) -> Response:
    """The endpoint's messages, newest first, each with every attempt."""
    params = validate_query(WebhookDeliveryListParams, request.args)
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    page = webhooks.messages_page(db.session, endpoint, page=params.page, per_page=params.per_page)
    return json_response(
        WebhookDeliveryPage(
            items=[WebhookDeliveryOut.of(record) for record in page.items],
            page=page.page,
            per_page=page.per_page,
            total=page.total,
            pages=page.pages,
        )
    )


@bp.post(f"{ENDPOINT_URL}/deliveries/<int:delivery_id>/retry")
@policy("admin")
def retry_delivery(endpoint_id: int, delivery_id: int) -> Response:
    """Send one message again with its original webhook-id; 409 while it is in flight."""
    with db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        out = WebhookDeliveryOut.of(webhooks.resend(session, endpoint, delivery_id, now=utcnow()))
    return json_response(out, status=202)


@bp.post(f"{ENDPOINT_URL}/replay")
@policy("admin")
def replay(endpoint_id: int) -> Response:
    """Send again every message created in a window (at most 31 days), ids unchanged."""
    window = validate_body(ReplayWindow)
    with db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        count = webhooks.replay(session, endpoint, window, now=utcnow())
    return json_response(ReplayOut(replayed=count), status=202)
