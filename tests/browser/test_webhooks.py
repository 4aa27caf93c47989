"""Webhooks as an admin sets one up, in Chromium: register an endpoint, copy its secret,
change an item, follow the delivery from the ledger to the receiver's answer, replay it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from standardwebhooks import Webhook

from app import create_app
from app.extensions import db
from tests.browser.conftest import sign_in
from tests.conftest import LiveServer, make_settings
from tests.factories import make_role_accounts
from tests.webhooks.receiver import Receiver, start_receiver

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = start_receiver()
    yield found
    found.stop()


@pytest.fixture
def hooks_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """Jobs in-process, and 127.0.0.1 allowlisted so the loopback receiver may be called."""
    settings = make_settings(
        tmp_path,
        database_url=sqlite_url,
        jobs_mode="thread",
        webhook_allowed_networks="127.0.0.1/32",
    )
    app = create_app(settings)
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=" Person")
    server = LiveServer(app).start()
    yield server
    server.stop()
    db.dispose(app)


def test_register_copy_the_secret_see_the_delivery_and_replay_it(
    browser: Browser, hooks_server: LiveServer, receiver: Receiver
) -> None:
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hooks_server.url)
    page = context.new_page()
    sign_in(page, hooks_server, "admin@example.com", path="/login?next=/admin/webhooks")
    page.wait_for_url(hooks_server.url + "/admin/webhooks")
    expect(page.get_by_text("No endpoints yet")).to_be_visible()

    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_label("Endpoint URL").fill("http://10.0.0.7/hooks")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#e-url")).to_contain_text("private")  # refused, and why
    expect(page.locator("#e-events")).to_have_text("Choose at least one.")
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("item.created").check()
    page.get_by_label("Description").fill("Orders system")
    page.get_by_role("button", name="Add endpoint").click()
    page.wait_for_url(f"{hooks_server.url}/admin/webhooks/*")

    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("whsec_") and secret == page.locator("#webhook-secret").input_value()
    endpoint_url = page.url
    page.reload()
    expect(page.locator("#webhook-secret")).to_have_count(0)  # shown once

    page.goto(hooks_server.url + "/items/new")
    page.get_by_label("Name").fill("Signal lamp")
    page.get_by_label("Price (USD)").fill("19.90")
    page.get_by_role("button", name="Create item").click()
    expect(page.get_by_role("heading", name="Signal lamp")).to_be_visible()

    page.goto(hooks_server.url + "/admin/deliveries?channel=webhook")
    row = page.locator("tr", has_text="item.created")
    expect(row.locator(".badge")).to_have_text("sent", timeout=10_000)
    row.get_by_role("link", name="Webhook endpoint").click()
    page.wait_for_url(f"{endpoint_url}#webhook-delivery-*")
    delivery = page.locator("#webhook-deliveries tr", has_text="item.created")
    delivery.locator("summary").click()
    expect(delivery.locator("pre.response")).to_have_text("ok")
    expect(delivery).to_contain_text("HTTP 200")

    page.get_by_label("Send again every message from").select_option("1h")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator(".flash-success")).to_contain_text("Replaying 1 message")
    replayed = page.locator("#webhook-deliveries tr", has_text="item.created")
    expect(replayed.locator("td[data-label=Attempts]")).to_have_text("2", timeout=10_000)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for got in (first, second):
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] == "item.created" and payload["data"]["name"] == "Signal lamp"
    context.close()
