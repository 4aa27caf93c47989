"""Payments in Chromium against localstripe (its mock Stripe.js included): buy an item and
see it paid, a declining card shows why, an admin refunds part of a payment."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app import create_app
from app.extensions import db
from app.models.item import Item
from tests.browser.conftest import sign_in
from tests.conftest import LiveServer, make_settings
from tests.factories import make_role_accounts
from tests.payments.conftest import start_localstripe

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "payments"


def shoot(page: Page, name: str) -> None:
    """The page at desktop and phone widths, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in (("desktop", 1280), ("phone", 390)):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    process, url = start_localstripe()
    yield url
    process.terminate()
    process.wait(5)


@pytest.fixture
def shop(sqlite_url: str, tmp_path: Path, localstripe_url: str) -> Iterator[tuple[LiveServer, int]]:
    settings = make_settings(
        tmp_path,
        database_url=sqlite_url,
        jobs_mode="thread",
        stripe_api_key="sk_test_browser",
        stripe_api_base=localstripe_url,
        stripe_js_url=f"{localstripe_url}/js.stripe.com/v3/",
    )
    app = create_app(settings)
    with app.app_context(), db.transaction() as session:
        accounts = make_role_accounts(session, name_suffix=" Person")
        item = Item(
            owner_id=accounts["admin"], name="Desk lamp", price=Decimal("12.34"), status="active"
        )
        session.add(item)
        session.flush()
        item_id = item.id
    server = LiveServer(app).start()
    yield server, item_id
    server.stop()
    db.dispose(app)


def pay_with_card(page: Page, server: LiveServer, item_id: int, number: str) -> None:
    page.goto(f"{server.url}/items/{item_id}")
    page.get_by_role("link", name="Buy for $12.34").click()
    expect(page.get_by_role("heading", name="Pay 12.34 USD")).to_be_visible()
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("30")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("10001")
    page.get_by_role("button", name="Pay 12.34 USD").click()


def test_buy_an_item_see_a_decline_and_refund_part(
    browser: Browser, shop: tuple[LiveServer, int]
) -> None:
    server, item_id = shop
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, server, "user@example.com")
    page.wait_for_url(server.url + "/")

    pay_with_card(page, server, item_id, "4242424242424242")
    expect(page.locator("#payment-status-badge")).to_have_text("succeeded")
    expect(page.get_by_text("Paid. A receipt is on its way")).to_be_visible()
    paid_url = page.url

    pay_with_card(page, server, item_id, "4000000000000341")
    expect(page.locator("#payment-status-badge")).to_have_text("failed")
    expect(page.locator("#decline-reason")).to_contain_text("The card was declined.")
    assert not [e for e in errors if "Content Security Policy" in e], errors

    admin = browser.new_page()
    sign_in(admin, server, "admin@example.com")
    admin.wait_for_url(server.url + "/")
    admin.goto(paid_url)
    admin.get_by_label("Amount (USD)").fill("20")
    admin.get_by_role("button", name="Refund").click()
    expect(admin.locator("#e-amount")).to_contain_text("12.34 USD")
    admin.get_by_label("Amount (USD)").fill("2.34")
    admin.get_by_role("button", name="Refund").click()
    expect(admin.locator("#payment-status-badge")).to_have_text("partially refunded")
    expect(admin.get_by_text("Refunded: 2.34 USD of 12.34 USD.")).to_be_visible()
    expect(admin.locator("#payment-timeline")).to_contain_text("refund")


def asked_for_3ds(browser: Browser, shop: tuple[LiveServer, int], card: str) -> Page:
    """A signed-in buyer who paid with a 3-D Secure card and is asked to confirm."""
    server, item_id = shop
    page = browser.new_page()
    sign_in(page, server, "user@example.com")
    page.wait_for_url(server.url + "/")
    pay_with_card(page, server, item_id, card)
    expect(page.locator("#payment-status-badge")).to_have_text("requires action")
    return page


def test_3d_secure_shows_what_to_do_and_ends_succeeded(
    browser: Browser, shop: tuple[LiveServer, int]
) -> None:
    page = asked_for_3ds(browser, shop, "4000002500003155")
    expect(page.locator("#three-d-secure")).to_contain_text(
        "Your bank asks you to confirm this payment (3-D Secure)"
    )
    shoot(page, "3ds-asked")
    page.get_by_role("button", name="Confirm with my bank").click()
    # localstripe's Stripe.js stands in for the bank's window with two buttons
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.locator("#payment-status-badge")).to_have_text("succeeded")
    expect(page.get_by_text("Paid. A receipt is on its way")).to_be_visible()
    shoot(page, "3ds-succeeded")
    expect(page.locator("#payment-timeline")).to_contain_text("lookup")


def test_3d_secure_failed_at_the_bank_says_so(
    browser: Browser, shop: tuple[LiveServer, int]
) -> None:
    page = asked_for_3ds(browser, shop, "4000000000003220")
    page.get_by_role("button", name="Confirm with my bank").click()
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.locator("#payment-status-badge")).to_have_text("failed")
    expect(page.locator("#decline-reason")).to_contain_text(
        "The card's 3-D Secure check was not completed."
    )
    shoot(page, "3ds-failed")
