"""Server-side charges of a vaulted PayPal wallet through the API: `paypal_vault_id` pays at
once (Orders v2, payment_source.paypal.vault_id, one step) with no buyer approval; a
decline answers 402; an Idempotency-Key and PayPal-Request-Id keep it to one capture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models.payment import Payment
from app.payments import get_payment_service
from tests.payments.conftest import item_id, payments_app
from tests.payments.fake_paypal import FakePayPal
from tests.payments.proxy import RecordingProxy

Headers = dict[str, dict[str, str]]


@pytest.fixture
def paypal_proxy(fake_paypal: FakePayPal) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(fake_paypal.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def app(
    sqlite_url: str, tmp_path: Path, stripe_proxy: RecordingProxy, paypal_proxy: RecordingProxy
) -> Iterator[Flask]:
    """Both providers behind recording proxies: what was sent to each is seen."""
    built = payments_app(
        tmp_path, sqlite_url, stripe_api_base=stripe_proxy.url, paypal_api_base=paypal_proxy.url
    )
    yield built
    db.dispose(built)


def buy(api: FlaskClient, headers: dict[str, str], body: dict[str, Any], key: str = "") -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/payments", json=body, headers={**headers, **extra})


def order_posts(proxy: RecordingProxy) -> list[str | None]:
    """The PayPal-Request-Id of every order created."""
    return [p.headers.get("PayPal-Request-Id") for p in proxy.posts("/v2/checkout/orders")]


def got_ref(app: Flask, payment_id: int) -> str:
    with app.app_context():
        return str(db.session.get(Payment, payment_id).provider_ref)


def test_a_vaulted_wallet_is_charged_at_once_without_approval(
    app: Flask,
    api: FlaskClient,
    tokens: Headers,
    fake_paypal: FakePayPal,
    paypal_proxy: RecordingProxy,
    stripe_proxy: RecordingProxy,
) -> None:
    vault = fake_paypal.vault()
    answer = buy(api, tokens["user"], {"item_id": item_id(app), "paypal_vault_id": vault})
    assert answer.status_code == 201, answer.json
    got = answer.json
    assert (got["status"], got["provider"], got["amount"]) == ("succeeded", "paypal", 1234)
    assert got["approval_url"] is None and got["client_secret"] is None
    assert fake_paypal.captures == 1 and stripe_proxy.seen == []  # never Stripe
    assert order_posts(paypal_proxy) == [f"payment-{got['id']}-intent"]
    assert paypal_proxy.posts("/capture") == []  # one step: no separate capture call
    order = fake_paypal.orders[got_ref(app, got["id"])]
    assert order["payment_source"] == {"paypal": {"vault_id": vault}}
    detail = api.get(f"/api/v1/payments/{got['id']}", headers=tokens["user"]).json
    assert [(t["kind"], t["outcome"]) for t in detail["transactions"]] == [("charge", "succeeded")]


def test_a_declined_vault_answers_402_naming_the_decline(
    app: Flask, api: FlaskClient, tokens: Headers, fake_paypal: FakePayPal
) -> None:
    vault = fake_paypal.vault(declines=True)
    answer = buy(api, tokens["user"], {"item_id": item_id(app), "paypal_vault_id": vault})
    assert answer.status_code == 402, answer.json
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "PayPal declined the payment method. (instrument_declined)" in answer.json["detail"]
    assert fake_paypal.captures == 0
    detail = api.get(answer.headers["Location"], headers=tokens["user"]).json
    assert (detail["status"], detail["decline_code"]) == ("failed", "instrument_declined")


def test_one_idempotency_key_charges_a_vault_once(
    app: Flask,
    api: FlaskClient,
    tokens: Headers,
    fake_paypal: FakePayPal,
    paypal_proxy: RecordingProxy,
) -> None:
    body = {"item_id": item_id(app), "paypal_vault_id": fake_paypal.vault()}
    first = buy(api, tokens["user"], body, key="vault-1")
    again = buy(api, tokens["user"], body, key="vault-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json["id"] == again.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert fake_paypal.captures == 1 and len(order_posts(paypal_proxy)) == 1


def test_a_lost_answer_is_asked_again_with_its_paypal_request_id_and_captures_once(
    app: Flask,
    api: FlaskClient,
    tokens: Headers,
    fake_paypal: FakePayPal,
    paypal_proxy: RecordingProxy,
) -> None:
    paypal_proxy.drop = ("/v2/checkout/orders",)  # PayPal charges; we never hear of it
    body = {"item_id": item_id(app), "paypal_vault_id": fake_paypal.vault()}
    answer = buy(api, tokens["user"], body)
    assert answer.status_code == 201 and answer.json["status"] == "pending"
    pid = answer.json["id"]
    assert order_posts(paypal_proxy) == [f"payment-{pid}-intent"] * 2  # retried, same id
    paypal_proxy.drop = ()
    with app.app_context():
        assert get_payment_service().reconcile(pid) == "succeeded"
    assert order_posts(paypal_proxy) == [f"payment-{pid}-intent"] * 3
    assert fake_paypal.captures == 1  # PayPal-Request-Id: the repeats moved no money


def test_a_card_and_a_vault_together_are_refused(
    app: Flask, api: FlaskClient, tokens: Headers, fake_paypal: FakePayPal
) -> None:
    body = {
        "item_id": item_id(app),
        "payment_method": "pm_card_visa",
        "paypal_vault_id": fake_paypal.vault(),
    }
    answer = buy(api, tokens["user"], body)
    assert answer.status_code == 422
    assert "not both" in str(answer.json)
    bad = buy(api, tokens["user"], {"item_id": item_id(app), "paypal_vault_id": "pm_x"})
    assert bad.status_code == 422 and "paypal_vault_id" in str(bad.json)
    assert fake_paypal.captures == 0


def test_a_vault_token_paypal_does_not_know_is_422_not_503(
    app: Flask, api: FlaskClient, tokens: Headers, fake_paypal: FakePayPal
) -> None:
    answer = buy(api, tokens["user"], {"item_id": item_id(app), "paypal_vault_id": "no-such-1"})
    assert answer.status_code == 422, answer.json
    assert "INVALID_RESOURCE_ID" in str(answer.json) and "Retry-After" not in answer.headers
    detail = api.get(answer.headers["Location"], headers=tokens["user"]).json
    assert (detail["status"], detail["provider"]) == ("failed", "paypal")
    assert fake_paypal.captures == 0
