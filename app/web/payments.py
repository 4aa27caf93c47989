"""Payment pages: checkout with Stripe.js Elements, the payments table, a payment's timeline,
the PayPal return and the admin refund form.

Card details go from Stripe.js straight to Stripe; this server sees PaymentMethod ids only.
The checkout page (and only it) widens the CSP to exactly the origin of STRIPE_JS_URL.
Every state change is a POST with CSRF; GETs (the PayPal return included) change nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, flash, request, url_for
from flask_login import current_user

from app.core.listing import ListQuery, Page, Seek
from app.core.middleware import CONTENT_SECURITY_POLICY
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.htmx import render
from app.models.payment import PAYMENT_LISTING, PAYMENT_STATUSES, PROVIDERS, Payment
from app.payments import get_payment_service, payment_urls, publishable_key
from app.policy import policy
from app.security import current_actor
from app.services import items as item_service
from app.services import payment as payments
from app.services.payment import minor_units
from app.settings import Settings, get_settings
from app.web.responses import see_other
from app.web.tables import Column, TableSpec, build_view

bp = Blueprint("payments", __name__, url_prefix="/payments")

TABLE = TableSpec(
    endpoint="payments.index",
    region_id="payments-table",
    listing=PAYMENT_LISTING,
    columns=(
        Column("created_at", "When", first_direction="desc"),
        Column("item_name", "Item"),
        Column("amount", "Amount", numeric=True, first_direction="desc"),
        Column("status", "Status"),
        Column("provider", "Provider"),
    ),
    filters=("status", "provider"),
    nouns=("payment", "payments"),
)
TEST_CARDS = (
    ("4242424242424242", "pays"),
    ("4000000000000341", "is declined when charged"),
    ("4000002500003155", "asks for 3-D Secure"),
)


@bp.get("")
@policy("read")
def index() -> Response:
    """Your payments (admins: everyone's), sortable, filtered by status and provider."""
    view = build_view(TABLE, request.args, _page)
    return render(
        "payments/index.html",
        fragments={"payments-table": "payments_table"},
        view=view,
        status_choices=[(s, s.replace("_", " ").title()) for s in PAYMENT_STATUSES],
        provider_choices=[(p, p.title()) for p in PROVIDERS],
    )


def _page(query: ListQuery, seek: Seek | None) -> Page[Payment]:
    return payments.list_payments(
        db.session, query, viewer_id=current_user.id, admin=current_user.is_admin, seek=seek
    )


@bp.get("/checkout/<int:item_id>")
@policy("write")
def checkout(item_id: int) -> Response:
    """The card form for one item, at its price; one Idempotency-Key per checkout."""
    item = item_service.get_item(db.session, item_id)
    settings = get_settings()
    response = render(
        "payments/checkout.html",
        item=item,
        amount=minor_units(item.price),
        currency=settings.currency,
        checkout_key=uuid.uuid4().hex,
        stripe_key=publishable_key(settings),
        stripe_js_url=settings.stripe_js_url if settings.stripe_api_key else None,
        paypal=bool(settings.paypal_client_id),
        configured=settings.payments_configured,
        test_cards=TEST_CARDS if _test_mode(settings) else (),
    )
    if settings.stripe_api_key:
        response.headers["Content-Security-Policy"] = checkout_csp(settings.stripe_js_url)
    return response


def checkout_csp(stripe_js_url: str) -> str:
    """The app's CSP with exactly Stripe.js's origin added where Stripe.js needs it."""
    parts = urlsplit(stripe_js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    widened = []
    for directive in CONTENT_SECURITY_POLICY.split("; "):
        name = directive.split(" ", 1)[0]
        if name in ("script-src", "connect-src"):
            directive = f"{directive} {origin}"
        widened.append(directive)
    widened.append(f"frame-src {origin}")
    return "; ".join(widened)


def _test_mode(settings: Settings) -> bool:
    key = settings.stripe_api_key or ""
    return settings.env != "production" and (
        key.startswith("sk_test") or bool(settings.stripe_api_base)
    )


@bp.post("")
@policy("write")
def create() -> Response:
    """Pay for the item with the PaymentMethod Stripe.js made (or with PayPal), then show
    the payment: succeeded, declined with why, or what the buyer must do next."""
    form = request.form
    raw_item = form.get("item_id", "")
    if not (raw_item.isascii() and raw_item.isdigit() and len(raw_item) <= 10):
        raise ValidationFailed(fields={"item_id": "Choose an item to buy."})
    item_id = int(raw_item)
    method = form.get("payment_method") or None
    if form.get("provider") == "paypal":
        method = None
    if method is not None and not method.startswith(("pm_", "card_")):
        raise ValidationFailed(fields={"payment_method": "The card form did not finish."})
    payment, _ = get_payment_service().pay(
        current_user.id,
        item_id,
        payment_method=method,
        idempotency_key=(form.get("checkout_key") or "")[:100] or None,
        urls=payment_urls(),
        actor=current_actor(),
    )
    if payment.status == "requires_action" and payment.approval_url:
        return see_other(payment.approval_url)  # PayPal's page; it sends the buyer back
    return see_other(url_for("payments.show", payment_id=payment.id))


@bp.get("/<int:payment_id>")
@policy("read")
def show(payment_id: int) -> Response:
    """The payment, what to do next, and every provider call in order."""
    record = payments.visible_payment(
        db.session, payment_id, viewer_id=current_user.id, admin=current_user.is_admin
    )
    settings = get_settings()
    needs_3ds = record.payment.status == "requires_action" and record.payment.provider == "stripe"
    response = render(
        "payments/show.html",
        payment=record.payment,
        transactions=record.transactions,
        needs_3ds=needs_3ds,
        stripe_key=publishable_key(settings),
        stripe_js_url=settings.stripe_js_url if needs_3ds else None,
        can_refund=current_user.is_admin
        and record.payment.status in ("succeeded", "partially_refunded"),
        refund_errors={},
        refund_value="",
    )
    if needs_3ds:
        response.headers["Content-Security-Policy"] = checkout_csp(settings.stripe_js_url)
    return response


@bp.post("/<int:payment_id>/refresh")
@policy("write")
def refresh(payment_id: int) -> Response:
    """After 3-D Secure: ask Stripe where the payment stands."""
    payments.visible_payment(db.session, payment_id, viewer_id=current_user.id, admin=False)
    get_payment_service().refresh(payment_id, actor=current_actor())
    return see_other(url_for("payments.show", payment_id=payment_id))


@bp.get("/<int:payment_id>/paypal-return")
@policy("read")
def paypal_return(payment_id: int) -> Response:
    """Where PayPal sends the buyer back: a form (sent at once by script) that captures."""
    record = payments.visible_payment(
        db.session, payment_id, viewer_id=current_user.id, admin=False
    )
    if request.args.get("token") not in (None, record.payment.provider_ref):
        abort(404)
    return render("payments/paypal_return.html", payment=record.payment)


@bp.post("/<int:payment_id>/capture")
@policy("write")
def capture(payment_id: int) -> Response:
    """Capture the PayPal order the buyer approved (once, however often this is sent)."""
    payments.visible_payment(db.session, payment_id, viewer_id=current_user.id, admin=False)
    try:
        get_payment_service().capture_approved(payment_id, actor=current_actor())
    except Conflict as exc:
        flash(exc.message, "error")
    return see_other(url_for("payments.show", payment_id=payment_id))


@bp.post("/<int:payment_id>/refunds")
@policy("admin")
def refund(payment_id: int) -> Response:
    """Refund all (empty amount) or part of a payment; 422 with the reason beside the field."""
    raw = request.form.get("amount", "").strip()
    try:
        amount = _amount(raw)
        get_payment_service().refund(payment_id, amount, actor=current_actor())
    except (ValidationFailed, Conflict) as exc:
        record = payments.visible_payment(db.session, payment_id, viewer_id=0, admin=True)
        message = exc.fields.get("amount") if exc.fields else exc.message
        return render(
            "payments/show.html",
            fragments={"refund-form": "refund_form"},
            status=422 if isinstance(exc, ValidationFailed) else 409,
            payment=record.payment,
            transactions=record.transactions,
            needs_3ds=False,
            can_refund=True,
            refund_errors={"amount": message},
            refund_value=raw,
        )
    flash("Refund issued.", "success")
    return see_other(url_for("payments.show", payment_id=payment_id))


def _amount(raw: str) -> int | None:
    """A refund amount typed in major units ("2.50") as minor units; empty: all that is left."""
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationFailed(fields={"amount": "Enter an amount like 2.50."}) from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise ValidationFailed(
            fields={"amount": "Enter a positive amount with at most 2 decimals."}
        )
    if value > Decimal("20000000"):
        raise ValidationFailed(fields={"amount": "That is more than any payment here."})
    return minor_units(value)
