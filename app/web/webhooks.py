"""Administration of outgoing webhooks: endpoints, their deliveries, retries and replay.

A new or rotated secret is shown once: it rides in the session to the endpoint's
page, which takes it out as it shows it. The deliveries list polls itself while a
message is on its way, so a change made elsewhere shows up without a reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, request, session, url_for

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.htmx import htmx, render
from app.models.base import utcnow
from app.models.messaging import Delivery
from app.models.webhooks import WEBHOOK_EVENTS, WebhookEndpoint
from app.policy import policy
from app.security import current_actor
from app.services import webhooks
from app.services.webhooks import EndpointCreate, EndpointPatch, ReplayWindow
from app.settings import get_settings
from app.web.responses import see_other

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")

NEW_SECRET = "_webhook_secret"  # session key: (endpoint id, secret) until the page shows it
PER_PAGE = 20
POLL_HORIZON = timedelta(minutes=1)
REPLAY_WINDOWS = {
    "1h": ("the last hour", timedelta(hours=1)),
    "24h": ("the last 24 hours", timedelta(hours=24)),
    "7d": ("the last 7 days", timedelta(days=7)),
    "31d": ("the last 31 days", timedelta(days=31)),
}


@bp.get("")
@policy("admin")
def index() -> Response:
    """Every endpoint, with what it wants and whether it is sending."""
    return render("admin/webhooks/index.html", endpoints=webhooks.list_endpoints(db.session))


@bp.get("/new")
@policy("admin")
def new() -> Response:
    return _form_page(None, {"events": []}, {})


@bp.post("")
@policy("admin")
def create() -> Response:
    """Register an endpoint, then show its secret once on its page."""
    form = request.form
    try:
        rules = get_settings().webhook_rules()
        fields = webhooks.validate_endpoint(EndpointCreate, _fields(form), rules)
        with db.transaction() as tx:
            endpoint = webhooks.create_endpoint(tx, fields, rules, actor=current_actor())
    except ValidationFailed as exc:
        return _form_page(None, _fields(form), _field_errors(exc), status=422)
    session[NEW_SECRET] = (endpoint.id, endpoint.secret)
    flash("Endpoint added. Copy its signing secret now: it is shown only once.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.get("/<int:endpoint_id>")
@policy("admin")
def show(endpoint_id: int) -> Response:
    """The endpoint, its newest deliveries with every attempt, and what can be done."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    page = _page_number(request.args)
    records = webhooks.messages_page(db.session, endpoint, page=page, per_page=PER_PAGE)
    now = utcnow()
    shown = session.get(NEW_SECRET)
    secret = None
    if shown and shown[0] == endpoint.id and not htmx().wants_fragment:
        secret = session.pop(NEW_SECRET)[1]
    return render(
        "admin/webhooks/show.html",
        fragments={"webhook-deliveries": "deliveries"},
        endpoint=endpoint,
        records=records,
        in_flight=any(_soon(r.delivery, now) for r in records.items),
        secret=secret,
        windows=REPLAY_WINDOWS,
        now=now,
    )


@bp.get("/<int:endpoint_id>/edit")
@policy("admin")
def edit(endpoint_id: int) -> Response:
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    values = {"url": endpoint.url, "description": endpoint.description, "events": endpoint.events}
    return _form_page(endpoint, values, {})


@bp.post("/<int:endpoint_id>")
@policy("admin")
def update(endpoint_id: int) -> Response:
    """Save the URL, description and events."""
    endpoint = webhooks.get_endpoint(db.session, endpoint_id)
    form = request.form
    try:
        rules = get_settings().webhook_rules()
        changes = webhooks.validate_endpoint(EndpointPatch, _fields(form), rules)
        with db.transaction() as tx:
            webhooks.update_endpoint(tx, endpoint, changes, rules, actor=current_actor())
    except ValidationFailed as exc:
        db.session.refresh(endpoint)
        return _form_page(endpoint, _fields(form), _field_errors(exc), status=422)
    flash("Saved.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/enabled")
@policy("admin")
def set_enabled(endpoint_id: int) -> Response:
    """Pause or resume sending (resuming clears the failure run)."""
    enabled = request.form.get("enabled") == "1"
    with db.transaction() as tx:
        endpoint = webhooks.get_endpoint(tx, endpoint_id)
        webhooks.update_endpoint(
            tx,
            endpoint,
            EndpointPatch(enabled=enabled),
            get_settings().webhook_rules(),
            actor=current_actor(),
        )
    flash("Sending resumed." if enabled else "Sending paused.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/delete")
@policy("admin")
def delete(endpoint_id: int) -> Response:
    with db.transaction() as tx:
        endpoint = webhooks.get_endpoint(tx, endpoint_id)
        url = endpoint.url
        webhooks.delete_endpoint(tx, endpoint, actor=current_actor())
    flash(f"Removed the endpoint {url} and its delivery history.", "success")
    return see_other(url_for("webhooks.index"))


@bp.post("/<int:endpoint_id>/rotate")
@policy("admin")
def rotate(endpoint_id: int) -> Response:
    """A new secret, shown once; the old one keeps signing for 24 hours."""
    with db.transaction() as tx:
        endpoint = webhooks.get_endpoint(tx, endpoint_id)
        secret = webhooks.rotate_secret(tx, endpoint, now=utcnow(), actor=current_actor())
    session[NEW_SECRET] = (endpoint_id, secret)
    flash(
        "New secret made. Deliveries carry signatures by the old and the new secret for "
        "24 hours: update your receiver before then.",
        "success",
    )
    return see_other(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/test")
@policy("admin")
def send_test(endpoint_id: int) -> Response:
    with db.transaction() as tx:
        endpoint = webhooks.get_endpoint(tx, endpoint_id)
        webhooks.send_test(tx, endpoint, now=utcnow())
    flash("Test event queued; it appears below with the receiver's answer.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/retry")
@policy("admin")
def retry(endpoint_id: int, delivery_id: int) -> Response:
    """Send one message again with its webhook-id; refused while it is still in flight."""
    try:
        with db.transaction() as tx:
            endpoint = webhooks.get_endpoint(tx, endpoint_id)
            webhooks.resend(tx, endpoint, delivery_id, now=utcnow())
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash("Sent again with the same webhook-id.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/replay")
@policy("admin")
def replay(endpoint_id: int) -> Response:
    """Send again every message of a recent window (receivers dedupe by webhook-id)."""
    choice = REPLAY_WINDOWS.get(request.form.get("window", ""))
    if choice is None:
        raise ValidationFailed(fields={"window": "Choose how far back to replay."})
    label, span = choice
    now = utcnow()
    with db.transaction() as tx:
        endpoint = webhooks.get_endpoint(tx, endpoint_id)
        count = webhooks.replay(tx, endpoint, ReplayWindow(since=now - span, until=now), now=now)
    noun = "message" if count == 1 else "messages"
    flash(f"Replaying {count} {noun} from {label}.", "success")
    return see_other(url_for("webhooks.show", endpoint_id=endpoint_id))


# --- helpers -----------------------------------------------------------------------------


def _fields(form: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "url": form.get("url", ""),
        "description": form.get("description", ""),
        "events": form.getlist("events") if hasattr(form, "getlist") else [],
    }


def _field_errors(exc: ValidationFailed) -> dict[str, str]:
    """One message per form field (`events.2` is the events checkboxes)."""
    errors: dict[str, str] = {}
    for key, message in exc.fields.items():
        errors.setdefault(key.split(".")[0], message)
    return errors


def _soon(delivery: Delivery, now: datetime) -> bool:
    """Whether a delivery will change within the minute (the page then polls)."""
    if delivery.state == "pending":
        return True
    due = delivery.next_retry_at
    return delivery.state == "retrying" and due is not None and due - now < POLL_HORIZON


def _page_number(args: Mapping[str, str]) -> int:
    raw = args.get("page", "1")
    page = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else 0
    if page < 1:
        raise NotFound("No such page.")
    return page


def _form_page(
    endpoint: WebhookEndpoint | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    *,
    status: int = 200,
) -> Response:
    return render(
        "admin/webhooks/form.html",
        fragments={"webhook-form": "webhook_form"},
        status=status,
        endpoint=endpoint,
        values=values,
        errors=errors,
        event_choices=WEBHOOK_EVENTS,
    )
