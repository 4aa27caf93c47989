"""JSON endpoints for payments: buy an item, list and read your payments, refund (admins).

A card's PaymentMethod id pays through Stripe (PayPal's approval page if Stripe cannot be
reached); a PayPal vault token is charged at once through PayPal, nobody approving.

`POST /payments` honours `Idempotency-Key`: a repeat with the same key (at once or
later) answers with the same payment and charges nothing more. A decline answers 402
with problem JSON naming it; the amount is always the item's price in the database.
"""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from flask_login import current_user

from app.api.payment_schemas import (
    PaymentCreate,
    PaymentDetail,
    PaymentListParams,
    PaymentOut,
    PaymentPage,
    RefundCreate,
)
from app.api.schemas import json_response, validate_body, validate_query
from app.errors import ValidationFailed
from app.extensions import db
from app.payments import get_payment_service, payment_urls
from app.policy import policy
from app.security import current_actor
from app.services import payment as payments
from app.services.payment import PaymentDeclined, PaymentsUnavailable, decline_words

bp = Blueprint("api_payments", __name__, url_prefix="/payments")

MAX_KEY = 120


def idempotency_key() -> str | None:
    """The client's Idempotency-Key header (printable ASCII, at most 120 characters)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (0 < len(key) <= MAX_KEY and key.isascii() and key.isprintable()):
        raise ValidationFailed(
            fields={"Idempotency-Key": "Use 1 to 120 printable ASCII characters."}
        )
    return key


@bp.post("")
@policy("write")
def create_payment() -> Response:
    """Buy an item; 201 (a repeat of a key: the same payment again), 402 on a decline,
    422 when the provider refuses the method itself (an unknown PayPal vault token)."""
    fields = validate_body(PaymentCreate)
    key = idempotency_key()
    payment, created = get_payment_service().pay(
        current_user.id,
        fields.item_id,
        payment_method=fields.method,
        idempotency_key=key,
        urls=payment_urls(),
        actor=current_actor(),
    )
    location = url_for(".get_payment", payment_id=payment.id)
    if payment.status == "failed":
        if payment.decline_code:
            raise PaymentDeclined(
                f"{decline_words(payment.decline_code)} ({payment.decline_code})",
                headers={"Location": location},
            )
        if payment.provider is not None:  # it answered, refusing the method itself
            field = "payment_method" if fields.payment_method else "paypal_vault_id"
            message = payment.failure_message or "The provider refused this payment method."
            raise ValidationFailed(fields={field: message}, headers={"Location": location})
        raise PaymentsUnavailable(
            payment.failure_message or "The payment could not be taken.",
            headers={"Location": location, "Retry-After": "30"},
        )
    response = json_response(PaymentOut.model_validate(payment), status=201)
    response.headers["Location"] = location
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("")
@policy("read")
def list_payments() -> Response:
    """Your payments, newest first (admins: everyone's)."""
    params = validate_query(PaymentListParams, request.args)
    page = payments.list_payments(
        db.session, params.list_query(), viewer_id=current_user.id, admin=current_user.is_admin
    )
    return json_response(
        PaymentPage(
            items=[PaymentOut.model_validate(p) for p in page.items],
            page=page.page,
            per_page=page.per_page,
            total=page.total,
            pages=page.pages,
        )
    )


@bp.get("/<int:payment_id>")
@policy("read")
def get_payment(payment_id: int) -> Response:
    """One of your payments with every provider call made for it."""
    record = payments.visible_payment(
        db.session, payment_id, viewer_id=current_user.id, admin=current_user.is_admin
    )
    return json_response(PaymentDetail.of(record))


@bp.post("/<int:payment_id>/refunds")
@policy("admin")
def refund_payment(payment_id: int) -> Response:
    """Refund all or part of a payment (never more than was captured)."""
    fields = validate_body(RefundCreate)  # {} refunds all that is left
    payments.visible_payment(db.session, payment_id, viewer_id=current_user.id, admin=True)
    get_payment_service().refund(payment_id, fields.amount, actor=current_actor())
    record = payments.visible_payment(db.session, payment_id, viewer_id=current_user.id, admin=True)
    return json_response(PaymentDetail.of(record), status=201)
