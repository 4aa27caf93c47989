"""The delivery ledger: every message the app owes someone, in one table.

Emails today; webhook deliveries and payment attempts join as rows of the same
ledger. Failed and dead rows offer "Retry now", which sends them again under a
new message (app/services/deliveries.py); a payment whose outcome is unknown offers
"Check now", which asks its provider how it ended (the reconciliation the job would run
later). htmx redraws the row, a plain form post comes back to the list.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, flash, request

from app.core.listing import ListQuery, Page, Seek
from app.errors import Conflict
from app.extensions import db
from app.htmx import htmx, render
from app.models.messaging import CHANNELS, DELIVERY_STATES, Delivery
from app.payments import get_payment_service
from app.policy import policy
from app.security import current_actor
from app.services import deliveries, payment, webhooks
from app.web.responses import see_other
from app.web.tables import Column, TableSpec, build_view, current_table_args

bp = Blueprint("deliveries", __name__, url_prefix="/admin/deliveries")

LEDGER = TableSpec(
    endpoint="deliveries.index",
    region_id="deliveries-table",
    listing=deliveries.LISTING,
    columns=(
        Column("created_at", "When", first_direction="desc"),
        Column("kind", "Kind"),
        Column("recipient", "Recipient"),
        Column("summary", "Summary"),
        Column("state", "State"),
        Column("attempts", "Attempts", numeric=True),
        Column("last_error", "Last error"),
        Column("next_retry_at", "Next retry"),
    ),
    filters=("state", "channel"),
    nouns=("delivery", "deliveries"),
)


@bp.get("")
@policy("admin")
def index() -> Response:
    """The ledger, newest first; filter by state and channel, search recipient and summary."""
    return _ledger(request.args)


def _ledger(args: Mapping[str, str]) -> Response:
    view = build_view(LEDGER, args, deliveries_page)
    return render(
        "admin/deliveries.html",
        fragments={"deliveries-table": "deliveries_table"},
        view=view,
        state_choices=[(s, s.title()) for s in DELIVERY_STATES],
        channel_choices=[(c, c.title()) for c in CHANNELS],
        action_for=deliveries.action_for,
        endpoints=_endpoints(view.page.items),
        payments=_payments(view.page.items),
    )


def _endpoints(rows: list[Delivery]) -> dict[int, int]:
    """Webhook rows link to their endpoint's page, where every attempt and answer is."""
    return webhooks.endpoints_of(db.session, [d.id for d in rows if d.channel == "webhook"])


def _payments(rows: list[Delivery]) -> dict[int, int]:
    """Payment rows link to the payment's page, with every provider call."""
    return payment.payment_of_delivery(db.session, [d.id for d in rows if d.channel == "payment"])


def deliveries_page(query: ListQuery, seek: Seek | None) -> Page[Delivery]:
    return deliveries.list_deliveries(db.session, query, seek)


@bp.post("/<int:delivery_id>/retry")
@policy("admin")
def retry(delivery_id: int) -> Response:
    """Send a failed or dead delivery again (409 with the reason for any other state)."""
    error = None
    try:
        with db.transaction() as session:
            delivery = deliveries.retry_now(session, delivery_id, actor=current_actor())
    except Conflict as exc:
        error = exc.message
        with db.transaction() as session:  # read in a unit of its own: the session stays clean
            delivery = deliveries.get_delivery(session, delivery_id)
    return _answer(delivery, error=error, done=f"Sending to {delivery.recipient} again.")


@bp.post("/<int:delivery_id>/check")
@policy("admin")
def check(delivery_id: int) -> Response:
    """Ask the provider how a payment whose outcome is unknown ended, and apply it now
    (409 for any other row)."""
    delivery = deliveries.get_delivery(db.session, delivery_id)
    payment_id = _payments([delivery]).get(delivery.id)
    if deliveries.action_for(delivery) != "check" or payment_id is None:
        return _answer(delivery, error="Only a payment whose outcome is unknown can be checked.")
    status = get_payment_service().reconcile(payment_id)
    with db.transaction() as session:
        session.refresh(delivery)  # the reconciler moved it in units of its own
    if status == "pending":  # asked, and still unknown: not an error of this request
        return _answer(delivery, done="No answer from the provider yet; it is asked again later.")
    return _answer(delivery, done=f"The provider says: {status.replace('_', ' ')}.")


def _answer(delivery: Delivery, *, error: str | None = None, done: str = "") -> Response:
    """The redrawn row for htmx (409 with the reason on error); a flash and the list otherwise."""
    if not htmx().targets(f"delivery-{delivery.id}"):
        flash(error or done, "error" if error else "success")
        back = build_view(LEDGER, current_table_args(), deliveries_page).url()
        return see_other(back)
    return render(
        "admin/deliveries.html",
        fragments={f"delivery-{delivery.id}": "delivery_row"},
        status=409 if error else 200,
        row=delivery,
        action_for=deliveries.action_for,
        row_error=error,
        row_note=None if error else done,
        endpoints=_endpoints([delivery]),
        payments=_payments([delivery]),
    )
