"""What a newcomer trips over, clicked through in Chromium: history, links, focus, wording,
lockout, phones, and an axe-core pass over every page at desktop and phone widths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from app import create_app
from app.extensions import db
from app.models import Item, User
from tests.browser.conftest import serious_axe_violations, sign_in
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import make_user

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def shop(live_accounts: LiveServer) -> LiveServer:
    """30 lamps owned by user@example.com, 3 by the admin, 2 vases by the user."""
    with live_accounts.app.app_context(), db.transaction() as session:
        owners = {u.email: u.id for u in session.query(User)}
        rows = [(owners["user@example.com"], f"Lamp {n:02}") for n in range(1, 31)]
        rows += [(owners["admin@example.com"], f"Lamp admin {n}") for n in range(1, 4)]
        rows += [(owners["user@example.com"], f"Vase {n}") for n in range(1, 3)]
        session.add_all(
            Item(owner_id=owner, name=name, price=Decimal(n + 1), status="active")
            for n, (owner, name) in enumerate(rows)
        )
    return live_accounts


def _settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")


def _accept_and_remember(page: Page) -> list[str]:
    seen: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.accept()

    page.on("dialog", on_dialog)
    return seen


# --- 1 and 5: admin row actions keep a URL that reloads; a deleted user leaves the table ---


def test_admin_row_actions_keep_an_address_that_reloads(
    page: Page, live_accounts: LiveServer
) -> None:
    sign_in(page, live_accounts, "admin@example.com", path="/login?next=/admin/users")
    page.wait_for_url(live_accounts.url + "/admin/users")
    expect(page.locator(".pager-summary")).to_have_text("3 users")
    guest = page.locator("tr", has_text="guest@example.com")  # re-resolved after each redraw
    guest.locator("select[name=role]").select_option("user")
    _settle(page)
    expect(
        page.locator("tr", has_text="guest@example.com").locator("select[name=role]")
    ).to_have_value("user")
    page.locator("tr", has_text="guest@example.com").get_by_role(
        "button", name="Deactivate"
    ).click()
    _settle(page)
    expect(page.locator("tr", has_text="guest@example.com")).to_contain_text("inactive")
    assert page.url == live_accounts.url + "/admin/users"

    messages = _accept_and_remember(page)
    page.locator("tr", has_text="guest@example.com").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-success")).to_have_text(
        "Deleted guest@example.com and everything they owned."
    )
    expect(page.locator(".pager-summary")).to_have_text("2 users")
    expect(page.locator("tr", has_text="guest@example.com")).to_have_count(0)
    assert messages and "guest@example.com" in messages[0]
    assert page.url == live_accounts.url + "/admin/users"
    reloaded = page.reload()
    assert reloaded is not None and reloaded.status == 200
    page.go_back()
    expect(page.locator(".error-code")).to_have_count(0)


# --- 2: reset links point at the server the app runs on -----------------------------------


@pytest.fixture
def dev_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server like `make run`'s: no PUBLIC_URL, the port it serves on in PORT."""
    port = free_port()
    settings = make_settings(
        tmp_path, database_url=sqlite_url, public_url="", port=port, jobs_mode="thread"
    )
    app = create_app(settings)
    with app.app_context(), db.transaction() as session:
        make_user(session, "ada@example.com", name="Ada")
    server = LiveServer(app, port).start()
    yield server
    server.stop()
    db.dispose(app)


def test_reset_links_reach_the_server_that_sent_them(
    page: Page, dev_server: LiveServer, tmp_path: Path
) -> None:
    page.goto(dev_server.url + "/forgot")
    page.fill("#f-email", "ada@example.com")
    page.click("#forgot-form button[type=submit]")
    expect(page.locator("#forgot-form")).to_contain_text("ada@example.com")
    outbox = tmp_path / "instance" / "mail"
    page.wait_for_timeout(100)
    for _ in range(50):  # the email leaves on the runner's thread, right after the commit
        if list(outbox.glob("*.eml")):
            break
        page.wait_for_timeout(100)
    mails = sorted(outbox.glob("*.eml"))
    assert len(mails) == 1
    body = (
        message_from_bytes(mails[0].read_bytes()).get_payload(0).get_payload(decode=True).decode()
    )
    link = re.search(r"http://\S+/reset/\S+", body)
    assert link and link.group(0).startswith(dev_server.url + "/reset/"), body
    page.goto(link.group(0))
    page.fill("#f-new_password", "a brand new secret")
    page.fill("#f-confirm_password", "a brand new secret")
    page.click("#reset-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Sign in with the new one")


# --- 3: focus after redraws; Enter and Escape in the inline editor ------------------------


def _press_and_wait(page: Page, selector: str, key: str = "Enter") -> None:
    before = page.url
    page.locator(selector).first.focus()
    page.keyboard.press(key)
    page.wait_for_function("u => location.href !== u", arg=before)
    _settle(page)


def test_focus_stays_with_the_control_that_redrew_the_table(page: Page, shop: LiveServer) -> None:
    sign_in(page, shop, "user@example.com", path="/login?next=/items")
    page.wait_for_url(shop.url + "/items")
    _press_and_wait(page, '[data-focus-key="sort-name"]')
    expect(page.locator('[data-focus-key="sort-name"]')).to_be_focused()
    _press_and_wait(page, '[data-focus-key="pager-Next page"]')
    expect(page.locator('[data-focus-key="pager-Next page"]').first).to_be_focused()
    page.locator("select[name=per_page]").focus()
    page.locator("select[name=per_page]").select_option("10")
    page.wait_for_url(re.compile(r"per_page=10"))
    _settle(page)
    expect(page.locator("select[name=per_page]")).to_be_focused()

    first = page.locator("#items-table tbody tr").first
    row_id = first.get_attribute("id")
    first.get_by_role("link", name="Edit").focus()
    page.keyboard.press("Enter")
    name = page.locator(f"#{row_id} input[name=name]")
    expect(name).to_be_focused()
    name.fill("Renamed by keyboard")
    page.keyboard.press("Enter")
    expect(page.locator(f"#{row_id}")).to_contain_text("Renamed by keyboard")
    edit = page.locator(f"#{row_id}").get_by_role("link", name="Edit")
    expect(edit).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#{row_id} input[name=name]")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(f"#{row_id}.is-editing")).to_have_count(0)
    expect(page.locator(f"#{row_id}").get_by_role("link", name="Edit")).to_be_focused()

    _accept_and_remember(page)
    page.locator(f"#{row_id} input[name=ids]").check()
    page.select_option("select[name=action]", "archive")
    page.locator('[data-focus-key="bulk-apply"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_have_text("Archived 1 item.")
    expect(page.locator('[data-focus-key="bulk-apply"]')).to_be_focused()


# --- 4: confirmations say what will happen --------------------------------------------------


def test_bulk_confirmations_name_the_action_count_and_search(page: Page, shop: LiveServer) -> None:
    sign_in(page, shop, "user@example.com", path="/login?next=/items%3Fq%3Dlamp")
    page.wait_for_url(re.compile(r"/items\?q=lamp"))
    # a plain user is offered only their own 30 of the 33 matching lamps
    expect(page.locator(".bulk-all")).to_contain_text("All 30 of your items matching “lamp”")
    messages: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.locator("#bulk-form button[type=submit]").click()  # nothing chosen yet
    expect(page.locator("[data-bulk-count]")).to_have_text("Select at least one item first.")
    assert messages == []
    page.check("[data-bulk-all]")
    page.select_option("select[name=action]", "delete")
    page.locator("#bulk-form button[type=submit]").click()
    expect(page.locator(".bulk-bar")).to_be_visible()
    page.wait_for_timeout(200)
    assert messages == ["Delete 30 items matching “lamp”? This cannot be undone."]
    page.uncheck("[data-bulk-all]")
    page.locator("#items-table tbody input[name=ids]").first.check()
    page.select_option("select[name=action]", "draft")
    page.locator("#bulk-form button[type=submit]").click()
    page.wait_for_timeout(200)
    assert messages[-1] == "Move 1 item to draft?"
    expect(page.locator(".pager-summary")).to_contain_text("of 33 items")  # nothing changed


def test_an_admin_is_offered_every_matching_row(page: Page, shop: LiveServer) -> None:
    sign_in(page, shop, "admin@example.com", path="/login?next=/items%3Fq%3Dlamp")
    page.wait_for_url(re.compile(r"/items\?q=lamp"))
    expect(page.locator(".bulk-all")).to_contain_text("All 33 items matching “lamp”")


# --- 6: the lockout keeps the form -----------------------------------------------------------


def test_the_lockout_keeps_the_form_and_counts_down(page: Page, live_accounts: LiveServer) -> None:
    page.goto(live_accounts.url + "/login")

    def submit() -> None:
        # Wait for each answer: the previous one's message is still on screen, so a text
        # check alone could let the next click land while a request is in flight.
        with page.expect_response(lambda r: r.request.method == "POST" and "/login" in r.url):
            page.click("#login-form button[type=submit]")

    for _ in range(5):
        page.fill("#f-email", "user@example.com")
        page.fill("#f-password", "wrong password")
        submit()
        expect(page.locator("#login-form .flash-error")).to_contain_text("incorrect")
    page.fill("#f-password", "wrong password")
    submit()
    message = page.locator("#login-form .flash-error")
    expect(message).to_have_count(1)
    expect(message).to_contain_text("Too many failed attempts. Try again in")
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    expect(page.locator("#f-email")).to_have_value("user@example.com")
    seconds = page.locator("[data-countdown-seconds]")
    first = int(seconds.inner_text().split()[0])
    page.wait_for_timeout(2200)
    assert int(seconds.inner_text().split()[0]) < first
    expect(page.locator(".flash")).to_have_count(1)  # said once


# --- 8: the top bar follows a profile change ------------------------------------------------


def test_the_top_bar_shows_a_new_name_at_once(page: Page, live_accounts: LiveServer) -> None:
    sign_in(page, live_accounts, "user@example.com", path="/login?next=/profile")
    page.wait_for_url(live_accounts.url + "/profile")
    page.locator("#profile-card").get_by_role("link", name="Edit").click()
    page.fill("#f-name", "Renamed Person")
    page.locator("#profile-card").get_by_role("button", name="Save changes").click()
    expect(page.locator("#profile-card .flash-success")).to_be_visible()
    expect(page.locator("#nav-user")).to_contain_text("Renamed Person")
    gap = page.locator("#profile-card .flash-success").evaluate(
        "el => parseFloat(getComputedStyle(el).marginBottom)"
    )
    assert gap > 0


# --- 9: empty states and wording -------------------------------------------------------------


def test_an_empty_search_helps_and_counts_read_naturally(page: Page, shop: LiveServer) -> None:
    sign_in(page, shop, "user@example.com", path="/login?next=/items%3Fq%3Dnothing-like-this")
    page.wait_for_url(re.compile(r"q=nothing-like-this"))
    expect(page.locator("#items-table .empty")).to_contain_text(
        "No items matching “nothing-like-this”."
    )
    expect(page.locator("[data-bulk-bar]")).to_have_count(0)
    expect(page.locator(".pager-summary")).to_have_text("No items")
    page.get_by_role("link", name="show every item").click()
    expect(page.locator(".pager-summary")).to_have_text("1–25 of 35 items")
    page.goto(shop.url + "/items?q=Vase+1")
    expect(page.locator(".pager-summary")).to_have_text("1 item")


# --- 10: phones ------------------------------------------------------------------------------


def test_on_a_phone_the_first_row_comes_first(browser: Browser, shop: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, shop, "user@example.com", path="/login?next=/items")
    page.wait_for_url(shop.url + "/items")
    first = page.locator("#items-table tbody tr").first
    box = first.bounding_box()
    assert box is not None and box["y"] + 40 < PHONE["height"], box  # visible without scrolling
    expect(page.locator("select[name=status]")).to_be_hidden()
    expect(page.locator(".bulk-bar")).to_be_hidden()
    page.locator(".tools-toggle-label").click()
    expect(page.locator("select[name=status]")).to_be_visible()
    expect(page.locator(".bulk-bar")).to_be_visible()
    expect(first.locator(".row-select-text")).to_have_text("Select")
    admins = page.locator("#items-table tbody tr", has_text="Lamp admin").first
    if admins.count():
        expect(admins.locator("td.actions")).to_be_hidden()
    width = first.bounding_box()["width"]  # type: ignore[index]
    first.get_by_role("link", name="Edit").click()
    editing = page.locator("#items-table tr.is-editing")
    expect(editing).to_be_visible()
    assert abs(editing.bounding_box()["width"] - width) <= 1  # type: ignore[index]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


# --- 7: axe-core on every page, desktop and phone -------------------------------------------

PAGES = {
    None: ["/login", "/register", "/forgot", "/no-such-page"],
    "admin@example.com": [
        "/",
        "/items",
        "/items?q=nothing-like-this",
        "/items/new",
        "/items/{item}",
        "/items/{item}/edit",
        "/items/{item}/delete",
        "/profile",
        "/profile/edit",
        "/admin/users",
        "/admin/audit",
        "/admin/imports",
        "/admin/jobs",
        "/admin/deliveries",
        "/admin/mail",
        "/admin/webhooks",
        "/admin/webhooks/new",
    ],
    "guest@example.com": ["/items", "/profile"],
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_serious_on_any_page(
    browser: Browser, shop: LiveServer, viewport: dict[str, int]
) -> None:
    with shop.app.app_context():
        item = db.session.query(Item).filter_by(name="Lamp admin 1").one().id
    problems: list[str] = []
    for who, paths in PAGES.items():
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = context.new_page()
        if who:
            sign_in(page, shop, who)
            page.wait_for_url(shop.url + "/")
        for path in paths:
            page.goto(shop.url + path.format(item=item))
            problems += [f"{path} ({who}): {v}" for v in serious_axe_violations(page)]
        context.close()
    assert problems == []
