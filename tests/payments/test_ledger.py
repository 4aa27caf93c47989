"""Payment rows of the delivery ledger (Admin -> Deliveries): a failed payment offers no
"Retry now" (nothing can send it again: its buyer pays again), and a payment whose outcome
is unknown offers "Check now", which asks Stripe and shows how it ended."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models.payment import Payment
from app.payments import get_payment_service
from tests.payments.conftest import item_id
from tests.payments.proxy import RecordingProxy
from tests.payments.test_pages import signed_in


@pytest.fixture
def stripe_base(stripe_proxy: RecordingProxy) -> str:
    return stripe_proxy.url


def buy(app: Flask, method: str, key: str) -> Payment:
    client = signed_in(app, "user")
    form = {"item_id": str(item_id(app)), "payment_method": method, "checkout_key": key}
    assert client.post("/payments", data=form).status_code == 303
    with app.app_context():
        return db.session.query(Payment).filter(Payment.idempotency_key.endswith(key)).one()


def ledger_row(admin: FlaskClient, delivery_id: int | None) -> str:
    page = admin.get("/admin/deliveries?channel=payment").get_data(as_text=True)
    found = re.search(rf'<tr id="delivery-{delivery_id}">.*?</tr>', page, re.S)
    assert found, page
    return found.group(0)


def row_fragment(admin: FlaskClient, delivery_id: int | None, action: str) -> tuple[int, str]:
    answer = admin.post(
        f"/admin/deliveries/{delivery_id}/{action}",
        headers={"HX-Request": "true", "HX-Target": f"tr#delivery-{delivery_id}"},
    )
    return answer.status_code, answer.get_data(as_text=True)


def test_a_failed_payment_offers_no_retry_and_refuses_one(
    app: Flask, stripe_proxy: RecordingProxy
) -> None:
    declined = buy(app, "pm_card_chargeCustomerFail", "declined")
    admin = signed_in(app, "admin")
    row = ledger_row(admin, declined.delivery_id)
    assert "failed" in row and "The card was declined." in row
    assert "Retry now" not in row and "Check now" not in row
    charges = len(stripe_proxy.posts("/confirm"))
    status, body = row_fragment(admin, declined.delivery_id, "retry")
    assert status == 409 and "its buyer pays again" in body and "<html" not in body
    status, body = row_fragment(admin, declined.delivery_id, "check")
    assert status == 409 and "outcome is unknown" in body
    assert len(stripe_proxy.posts("/confirm")) == charges  # nothing was sent again


def test_an_unknown_outcome_offers_check_now_which_reconciles_it(
    app: Flask, stripe_proxy: RecordingProxy
) -> None:
    stripe_proxy.drop = ("/confirm",)
    unknown = buy(app, "pm_card_visa", "unknown")
    assert unknown.status == "pending"
    admin = signed_in(app, "admin")
    row = ledger_row(admin, unknown.delivery_id)
    assert "retrying" in row and "Check now" in row and "Retry now" not in row
    assert f'action="/admin/deliveries/{unknown.delivery_id}/check"' in row

    stripe_proxy.drop = (f"/v1/payment_intents/{unknown.provider_ref}",)  # lookups too
    status, body = row_fragment(admin, unknown.delivery_id, "check")
    assert status == 200 and "No answer from the provider yet" in body
    assert "badge-retrying" in body and "Check now" in body  # still offered

    stripe_proxy.drop = ()
    # three unanswered calls in a row opened Stripe's breaker; its cooldown passes
    get_payment_service(app).factory.breaker("stripe").cooldown = 0
    status, body = row_fragment(admin, unknown.delivery_id, "check")
    assert status == 200, body
    assert "The provider says: succeeded." in body and "badge-sent" in body
    assert "Check now" not in body
    assert (
        len(stripe_proxy.posts("/confirm")) == 2
    )  # the two unanswered tries; lookups charge nothing
    with app.app_context():
        assert db.session.get(Payment, unknown.id).status == "succeeded"


def test_check_now_without_htmx_comes_back_to_the_list_with_a_message(
    app: Flask, stripe_proxy: RecordingProxy
) -> None:
    stripe_proxy.drop = ("/confirm",)
    unknown = buy(app, "pm_card_visa", "plain")
    stripe_proxy.drop = ()
    admin = signed_in(app, "admin")
    assert (
        signed_in(app, "user").post(f"/admin/deliveries/{unknown.delivery_id}/check").status_code
        == 403
    )
    answer = admin.post(f"/admin/deliveries/{unknown.delivery_id}/check")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/admin/deliveries")
    page = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The provider says: succeeded." in page
