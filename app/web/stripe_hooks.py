"""POST /webhooks/stripe: Stripe's events in, verified on the raw body, applied once.

Public (Stripe signs, it has no session) and exempt from CSRF; it answers at once:
what follows a state change (emails, outgoing webhooks) goes through the outbox.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.extensions import csrf, db
from app.policy import policy
from app.services import payment_events
from app.services.payment_events import BadSignature
from app.settings import get_settings

bp = Blueprint("stripe_hooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)


@bp.post("/stripe")
@policy("public")
def stripe_event() -> Response:
    """Verify, store and apply one Stripe event; 200 for duplicates and unknown types."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        raise BadSignature("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET).")
    raw = request.get_data(cache=False)
    event = payment_events.verify(raw, request.headers.get("Stripe-Signature", ""), secret)
    with db.transaction() as session:
        received = payment_events.receive(session, event, raw)
    return jsonify(received=True, duplicate=received.duplicate, applied=received.applied)
