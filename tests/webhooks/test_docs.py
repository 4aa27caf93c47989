"""What integrators read about webhook bodies matches what they receive: the OpenAPI
`webhooks` section validates real deliveries, and the README names every field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks import Webhook

from app.api.openapi import build_document
from app.models.webhooks import WEBHOOK_EVENTS
from app.services.webhook_payloads import PAYLOADS
from tests.webhooks.receiver import Receiver

README = Path(__file__).resolve().parents[2] / "README.md"


def _body_schema(document: dict[str, Any], event: str) -> dict[str, Any]:
    operation = document["webhooks"][event]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]
    return {**ref, "components": document["components"]}


def test_every_event_an_endpoint_can_want_is_documented(api_app: Flask) -> None:
    document = build_document(api_app)
    assert set(document["webhooks"]) == set(WEBHOOK_EVENTS) | {"webhook.test"}
    assert set(PAYLOADS) == set(document["webhooks"])
    headers = [p["name"] for p in document["webhooks"]["item.created"]["post"]["parameters"]]
    assert headers == ["webhook-id", "webhook-timestamp", "webhook-signature"]


def test_real_deliveries_match_the_document(
    api_app: Flask, api: FlaskClient, tokens: dict[str, dict[str, str]], receiver: Receiver
) -> None:
    body = {"url": receiver.url, "events": list(WEBHOOK_EVENTS)}
    created = api.post("/api/v1/webhooks", json=body, headers=tokens["admin"]).json or {}
    item = (
        api.post(
            "/api/v1/items", json={"name": "Lamp", "price": "4.00"}, headers=tokens["user"]
        ).json
        or {}
    )
    api.patch(f"/api/v1/items/{item['id']}", json={"price": "5.00"}, headers=tokens["user"])
    api.delete(f"/api/v1/items/{item['id']}", headers=tokens["user"])
    api.post(f"/api/v1/webhooks/{created['id']}/test", headers=tokens["admin"])
    document = build_document(api_app)
    seen = set()
    for got in receiver.received:
        payload = Webhook(created["secret"]).verify(got.body, got.headers)
        jsonschema.validate(payload, _body_schema(document, payload["type"]))
        seen.add(payload["type"])
    assert seen == {"item.created", "item.updated", "item.deleted", "webhook.test"}
    with pytest.raises(jsonschema.ValidationError):  # the schemas do constrain
        jsonschema.validate(
            {"type": "item.created", "data": {}}, _body_schema(document, "item.created")
        )


@pytest.mark.parametrize("event", sorted(PAYLOADS))
def test_the_readme_names_every_field(event: str) -> None:
    row = next(
        (line for line in README.read_text().splitlines() if line.startswith(f"| `{event}` |")),
        None,
    )
    assert row is not None, f"README has no row for {event}"
    for model in PAYLOADS[event]:
        for field in model.model_fields:
            assert f"`{field}`" in row, f"README's {event} row misses {field}"
