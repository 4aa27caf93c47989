"""Payment pages: buy button, checkout (Stripe.js from STRIPE_JS_URL, CSP for exactly its
origin), the payments table, a payment's timeline, the PayPal return, admin refunds."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login
from tests.payments.conftest import item_id
from tests.payments.fake_paypal import FakePayPal


def signed_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    login(client, f"{role}@example.com")
    return client


def test_the_item_page_offers_checkout_and_guests_see_no_buy_button(app: Flask) -> None:
    item = item_id(app)
    page = signed_in(app, "user").get(f"/items/{item}").get_data(as_text=True)
    assert f'href="/payments/checkout/{item}"' in page
    assert "buy-button" not in signed_in(app, "guest").get(f"/items/{item}").get_data(as_text=True)
    assert signed_in(app, "guest").get(f"/payments/checkout/{item}").status_code == 403


def test_checkout_loads_stripe_js_and_the_csp_allows_exactly_its_origin(
    app: Flask, localstripe: str
) -> None:
    response = signed_in(app, "user").get(f"/payments/checkout/{item_id(app)}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<script src="https://js.stripe.com/v3/"></script>' in page
    assert 'name="checkout_key"' in page and "4000000000000341" in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "frame-src https://js.stripe.com" in csp
    other = signed_in(app, "user").get("/payments").headers["Content-Security-Policy"]
    assert "stripe" not in other


def test_a_card_payment_from_the_form_shows_the_result(app: Flask) -> None:
    client = signed_in(app, "user")
    form = {"item_id": str(item_id(app)), "payment_method": "pm_card_visa", "checkout_key": "k1"}
    paid = client.post("/payments", data=form)
    assert paid.status_code == 303
    page = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert "succeeded" in page and "payment-timeline" in page
    declined = client.post(
        "/payments",
        data={**form, "payment_method": "pm_card_chargeCustomerFail", "checkout_key": "k2"},
    )
    page = client.get(declined.headers["Location"]).get_data(as_text=True)
    assert "The card was declined." in page and "card_declined" in page
    listing = client.get("/payments?status=failed").get_data(as_text=True)
    assert listing.count('id="payment-') == 1


def test_the_table_is_a_fragment_for_htmx(app: Flask) -> None:
    response = signed_in(app, "user").get(
        "/payments", headers={"HX-Request": "true", "HX-Target": "div#payments-table"}
    )
    body = response.get_data(as_text=True)
    assert 'id="payments-table"' in body and "<html" not in body
    assert "HX-Request" in response.headers["Vary"]


def test_paypal_checkout_goes_to_the_approval_page_and_captures_on_return(
    app: Flask, fake_paypal: FakePayPal
) -> None:
    client = signed_in(app, "user")
    sent = client.post(
        "/payments",
        data={"item_id": str(item_id(app)), "provider": "paypal", "checkout_key": "pp1"},
    )
    assert sent.status_code == 303 and sent.headers["Location"].startswith(fake_paypal.url)
    order = sent.headers["Location"].rsplit("=", 1)[1]
    fake_paypal.approve(order)
    back = fake_paypal.return_urls[order].replace("http://localhost", "")
    page = client.get(f"{back}?token={order}&PayerID=X").get_data(as_text=True)
    assert "data-autosubmit" in page
    pid = back.split("/")[2]
    done = client.post(f"/payments/{pid}/capture")
    assert done.status_code == 303
    assert "succeeded" in client.get(f"/payments/{pid}").get_data(as_text=True)
    client.post(f"/payments/{pid}/capture")
    assert fake_paypal.captures == 1


def test_admins_refund_part_and_bad_amounts_are_422_beside_the_field(app: Flask) -> None:
    user = signed_in(app, "user")
    paid = user.post(
        "/payments", data={"item_id": str(item_id(app)), "payment_method": "pm_card_visa"}
    )
    pid = paid.headers["Location"].rsplit("/", 1)[1]
    assert user.post(f"/payments/{pid}/refunds", data={"amount": "1"}).status_code == 403
    admin = signed_in(app, "admin")
    assert 'id="refund-form"' in admin.get(f"/payments/{pid}").get_data(as_text=True)
    for bad in ("abc", "-1", "1.234", "99.00"):
        response = admin.post(
            f"/payments/{pid}/refunds",
            data={"amount": bad},
            headers={"HX-Request": "true", "HX-Target": "form#refund-form"},
        )
        assert response.status_code == 422, bad
        assert 'id="e-amount"' in response.get_data(as_text=True)
    done = admin.post(f"/payments/{pid}/refunds", data={"amount": "2.34"})
    assert done.status_code == 303
    page = admin.get(f"/payments/{pid}").get_data(as_text=True)
    assert "partially refunded" in page and "2.34 USD" in page
    ledger = admin.get("/admin/deliveries?channel=payment").get_data(as_text=True)
    assert f'href="/payments/{pid}"' in ledger


def test_without_a_provider_the_buy_button_says_payments_are_off(sqlite_app: Flask) -> None:
    from app.extensions import db
    from tests.factories import make_role_accounts, seed_items

    with sqlite_app.app_context(), db.transaction() as session:
        accounts = make_role_accounts(session)
    (item,) = seed_items(sqlite_app, accounts["admin"], [("Lamp", "12.34", "active")])
    page = signed_in(sqlite_app, "user").get(f"/items/{item}").get_data(as_text=True)
    assert "Payments are not configured on this server." in page
    assert "/payments/checkout/" not in page


def test_flask_payments_reconcile_looks_up_what_is_pending(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["payments", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "0 pending payment(s) looked up." in result.output
