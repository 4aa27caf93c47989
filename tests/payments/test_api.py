"""POST/GET /api/v1/payments and refunds: the contract the React client relies on."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.payments.conftest import item_id
from tests.payments.proxy import RecordingProxy

Headers = dict[str, dict[str, str]]


def buy(api: FlaskClient, headers: dict[str, str], body: dict[str, Any], key: str | None = None):
    extra = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/payments", json=body, headers={**headers, **extra})


def test_paying_answers_201_with_the_payment_and_the_price_from_the_database(
    app: Flask, api: FlaskClient, tokens: Headers
) -> None:
    body = {
        "item_id": item_id(app),
        "payment_method": "pm_card_visa",
        "amount": 1,
        "currency": "jpy",
    }
    response = buy(api, tokens["user"], body)
    assert response.status_code == 201, response.json
    got = response.json
    assert {k: got[k] for k in ("status", "amount", "currency", "provider")} == {
        "status": "succeeded",
        "amount": 1234,
        "currency": "usd",
        "provider": "stripe",
    }
    assert response.headers["Location"] == f"/api/v1/payments/{got['id']}"
    detail = api.get(f"/api/v1/payments/{got['id']}", headers=tokens["user"]).json
    assert [(t["kind"], t["outcome"]) for t in detail["transactions"]] == [
        ("intent", "succeeded"),
        ("charge", "succeeded"),
    ]
    listed = api.get("/api/v1/payments", headers=tokens["user"]).json
    assert [p["id"] for p in listed["items"]] == [got["id"]]


def test_a_decline_answers_402_naming_it(app: Flask, api: FlaskClient, tokens: Headers) -> None:
    response = buy(
        api,
        tokens["user"],
        {"item_id": item_id(app), "payment_method": "pm_card_chargeCustomerFail"},
    )
    assert response.status_code == 402
    assert response.content_type == "application/problem+json"
    assert response.json["code"] == "payment_declined"
    assert "card_declined" in response.json["detail"]
    payment = api.get(response.headers["Location"], headers=tokens["user"]).json
    assert (payment["status"], payment["decline_code"]) == ("failed", "card_declined")


def test_a_repeated_key_returns_the_same_payment_and_charges_nothing_more(
    app: Flask, api: FlaskClient, tokens: Headers
) -> None:
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    first = buy(api, tokens["user"], body, key="checkout-abc")
    again = buy(api, tokens["user"], body, key="checkout-abc")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json["id"] == again.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    detail = api.get(f"/api/v1/payments/{first.json['id']}", headers=tokens["user"]).json
    assert sum(t["kind"] == "charge" for t in detail["transactions"]) == 1
    other_item = buy(
        api, tokens["user"], {**body, "item_id": item_id(app, "Free sample")}, key="checkout-abc"
    )
    assert other_item.status_code == 409


def test_guests_cannot_pay_and_others_payments_are_404(
    app: Flask, api: FlaskClient, tokens: Headers
) -> None:
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    assert buy(api, tokens["guest"], body).status_code == 403
    assert api.post("/api/v1/payments", json=body).status_code == 401
    mine = buy(api, tokens["user"], body).json["id"]
    admins = buy(api, tokens["admin"], body).json["id"]
    assert api.get(f"/api/v1/payments/{admins}", headers=tokens["user"]).status_code == 404
    assert api.get(f"/api/v1/payments/{mine}", headers=tokens["admin"]).status_code == 200
    assert {p["id"] for p in api.get("/api/v1/payments", headers=tokens["user"]).json["items"]} == {
        mine
    }
    assert len(api.get("/api/v1/payments", headers=tokens["admin"]).json["items"]) == 2


def test_bad_bodies_are_422(app: Flask, api: FlaskClient, tokens: Headers) -> None:
    assert buy(api, tokens["user"], {"item_id": 0}).status_code == 422
    response = buy(
        api, tokens["user"], {"item_id": item_id(app), "payment_method": "4242424242424242"}
    )
    assert response.status_code == 422 and "payment_method" in response.json["errors"]
    free = buy(
        api,
        tokens["user"],
        {"item_id": item_id(app, "Free sample"), "payment_method": "pm_card_visa"},
    )
    assert free.status_code == 422 and "item_id" in free.json["errors"]


def test_refunds_full_partial_and_never_above_the_capture(
    app: Flask, api: FlaskClient, tokens: Headers
) -> None:
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    pid = buy(api, tokens["user"], body).json["id"]
    url = f"/api/v1/payments/{pid}/refunds"
    assert api.post(url, json={"amount": 100}, headers=tokens["user"]).status_code == 403
    partial = api.post(url, json={"amount": 234}, headers=tokens["admin"])
    assert partial.status_code == 201, partial.json
    assert (partial.json["status"], partial.json["refunded_amount"]) == ("partially_refunded", 234)
    too_much = api.post(url, json={"amount": 1001}, headers=tokens["admin"])
    assert too_much.status_code == 422 and "amount" in too_much.json["errors"]
    rest = api.post(url, json={}, headers=tokens["admin"])
    assert (rest.json["status"], rest.json["refunded_amount"]) == ("refunded", 1234)
    refunds = [t for t in rest.json["transactions"] if t["kind"] == "refund"]
    assert [(t["amount"], t["outcome"]) for t in refunds] == [
        (234, "succeeded"),
        (1000, "succeeded"),
    ]
    assert api.post(url, json={"amount": 1}, headers=tokens["admin"]).status_code == 409


@pytest.fixture
def stripe_base(stripe_proxy: RecordingProxy) -> str:
    return stripe_proxy.url


def test_ten_concurrent_submits_of_one_checkout_charge_once(
    app: Flask, tokens: Headers, stripe_proxy: RecordingProxy
) -> None:
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    answers: list[tuple[int, int]] = []

    def submit() -> None:
        client = app.test_client()
        response = buy(client, tokens["user"], body, key="checkout-concurrent")
        answers.append((response.status_code, response.json["id"]))

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 10 and {status for status, _ in answers} == {201}
    assert len({pid for _, pid in answers}) == 1
    assert len(stripe_proxy.posts("/confirm")) == 1


def test_prices_beyond_what_providers_take_are_refused(
    app: Flask, api: FlaskClient, tokens: Headers
) -> None:
    from decimal import Decimal

    from app.extensions import db
    from app.models.item import Item

    with app.app_context(), db.transaction() as session:
        owner = session.query(Item).first().owner_id
        item = Item(owner_id=owner, name="Yacht", price=Decimal("1000000.00"), status="active")
        session.add(item)
        session.flush()
        yacht = item.id
    answer = buy(api, tokens["user"], {"item_id": yacht, "payment_method": "pm_card_visa"})
    assert answer.status_code == 422 and "item_id" in answer.json["errors"]
