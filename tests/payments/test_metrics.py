"""The payment metrics dashboards are written against, by their exact names and labels."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.payments.conftest import item_id


def test_payments_are_counted_timed_and_the_oldest_unknown_is_aged(
    app: Flask, api: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    assert api.post("/api/v1/payments", json=body, headers=tokens["user"]).status_code == 201
    text = app.test_client().get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    labels = {
        name: {tuple(sorted(s.labels)) for s in families[name].samples}
        for name in (
            "app_payments",
            "app_payment_provider_seconds",
            "app_payments_unknown_oldest_age_seconds",
        )
    }
    assert ("provider", "status") in labels["app_payments"]
    assert ("le", "operation", "provider") in labels["app_payment_provider_seconds"]
    assert labels["app_payments_unknown_oldest_age_seconds"] == {()}
    succeeded = [
        s.value
        for s in families["app_payments"].samples
        if s.name == "app_payments_total"
        and s.labels == {"provider": "stripe", "status": "succeeded"}
    ]
    assert succeeded and succeeded[0] >= 1
    assert families["app_payment_fallbacks"].type == "counter"
    assert families["app_payment_unknown_outcomes"].type == "counter"
