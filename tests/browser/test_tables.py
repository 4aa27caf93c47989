"""The items DataTable in Chromium: sorting, paging, page size, search, history, bulk, CSV."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Page, expect

from app.extensions import db
from app.models import Item, User
from tests.browser.conftest import sign_in
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

STATUSES = ("active", "draft", "archived")


@pytest.fixture
def catalog(live_accounts: LiveServer) -> LiveServer:
    """60 items owned by user@example.com with distinct names and prices."""
    with live_accounts.app.app_context(), db.transaction() as session:
        owner = session.query(User).filter_by(email="user@example.com").one()
        session.add_all(
            Item(
                owner_id=owner.id,
                name=f"Item {n:02}",
                price=Decimal((n * 37) % 101) + Decimal("0.50"),
                status=STATUSES[n % 3],
                description="red" if n % 4 == 0 else "blue",
            )
            for n in range(1, 61)
        )
    return live_accounts


def rows(page: Page) -> list[str]:
    return page.locator("#items-table tbody tr td[data-label=Name] a").all_inner_texts()


def prices(page: Page) -> list[Decimal]:
    texts = page.locator("#items-table tbody tr td[data-label=Price]").all_inner_texts()
    return [Decimal(t.replace("$", "").replace(",", "")) for t in texts]


def click_header(page: Page, label: str) -> None:
    before = page.url
    page.locator("#items-table thead a.sort-link", has_text=label).click()
    page.wait_for_function("u => location.href !== u", arg=before)
    page.wait_for_load_state("networkidle")


def test_sort_page_size_search_and_history(page: Page, catalog: LiveServer) -> None:
    sign_in(page, catalog, "user@example.com", path="/login?next=/items")
    page.wait_for_url(catalog.url + "/items")
    expect(page.locator("#items-table .pager-summary")).to_contain_text("1–25 of 60 items")

    click_header(page, "Name")
    assert rows(page)[:3] == ["Item 01", "Item 02", "Item 03"]
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Name")
    click_header(page, "Name")
    assert rows(page)[:2] == ["Item 60", "Item 59"]
    click_header(page, "Price")
    assert prices(page) == sorted(prices(page), reverse=True)
    click_header(page, "Price")
    ascending = prices(page)
    assert ascending == sorted(ascending)
    assert "sort=price" in page.url and "dir=asc" in page.url

    page.locator("a[aria-label='Next page']").first.click()
    expect(page.locator(".pager-summary")).to_contain_text("26–50 of 60 items")
    second = prices(page)
    assert second == sorted(second) and second[0] >= ascending[-1]
    page.locator("a[aria-label='Previous page']").first.click()
    expect(page.locator(".pager-summary")).to_contain_text("1–25 of 60 items")
    assert prices(page) == ascending

    page.select_option("select[name=per_page]", "10")
    expect(page.locator(".pager-summary")).to_contain_text("1–10 of 60 items")
    assert "per_page=10" in page.url

    page.fill("input[type=search][name=q]", "Item 1")
    expect(page.locator(".pager-summary")).to_contain_text("10 items")  # Item 10..19
    assert "q=Item+1" in page.url or "q=Item%201" in page.url
    searched = rows(page)

    page.go_back()
    expect(page.locator(".pager-summary")).to_contain_text("1–10 of 60 items")
    page.go_forward()
    expect(page.locator(".pager-summary")).to_contain_text("10 items")
    assert rows(page) == searched
    page.reload()
    expect(page.locator(".pager-summary")).to_contain_text("10 items")
    assert rows(page) == searched
    expect(page.locator("input[type=search][name=q]")).to_have_value("Item 1")


def test_bulk_delete_the_filtered_set_and_download_csv(page: Page, catalog: LiveServer) -> None:
    sign_in(page, catalog, "user@example.com", path="/login?next=/items")
    page.wait_for_url(catalog.url + "/items")
    page.select_option("select[name=status]", "draft")
    expect(page.locator(".pager-summary")).to_have_text("20 items")

    with page.expect_download() as download_info:
        page.click("[data-export-link]")
    text = download_info.value.path().read_text()
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [r["status"] for r in exported] == ["draft"] * 20  # the view htmx swapped in

    page.goto(catalog.url + "/items?status=draft&sort=name&dir=asc")
    with page.expect_download() as download_info:
        page.click("[data-export-link]")
    drafts = list(csv.DictReader(io.StringIO(download_info.value.path().read_text())))
    assert [r["status"] for r in drafts] == ["draft"] * 20
    assert [r["name"] for r in drafts] == sorted(r["name"] for r in drafts)

    page.check("[data-bulk-all]")
    expect(page.locator("[data-bulk-count]")).to_have_text("Everything matching is selected.")
    page.select_option("select[name=action]", "delete")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Deleted 20 items")
    page.goto(catalog.url + "/items")
    expect(page.locator(".pager-summary")).to_contain_text("of 40 items")


def test_inline_edit_and_delete_with_confirmation(page: Page, catalog: LiveServer) -> None:
    sign_in(page, catalog, "user@example.com", path="/login?next=/items%3Fsort%3Dname%26dir%3Dasc")
    page.wait_for_url("**/items?sort=name&dir=asc")
    first = page.locator("#items-table tbody tr").first
    first.locator("text=Edit").click()
    page.locator("#items-table tr.is-editing input[name=price]").fill("-1")
    page.locator("#items-table tr.is-editing button", has_text="Save").click()
    expect(page.locator("#items-table tr.is-editing .field-error")).to_have_text(
        "The price cannot be negative."
    )
    expect(page.locator("#items-table tr.is-editing input[name=price]")).to_be_focused()
    page.locator("#items-table tr.is-editing input[name=name]").fill("Renamed inline")
    page.locator("#items-table tr.is-editing input[name=price]").fill("5.25")
    page.locator("#items-table tr.is-editing button", has_text="Save").click()
    expect(page.locator("#items-table tbody tr").first).to_contain_text("Renamed inline")
    expect(page.locator("#items-table tbody tr").first).to_contain_text("$5.25")

    # The Delete link posts through htmx after the dialog; it never follows its href
    # (the confirmation page for browsers without JavaScript).
    table_url = catalog.url + "/items?sort=name&dir=asc"
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#items-table tbody tr").first.get_by_role("link", name="Delete").click()
    expect(page.locator("#items-table tbody tr").first).to_contain_text("Renamed inline")
    expect(page).to_have_url(table_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#items-table tbody tr").first.get_by_role("link", name="Delete").click()
    expect(page.locator(".flash-success")).to_contain_text("has been deleted")
    expect(page.locator(".pager-summary")).to_contain_text("of 59 items")
    expect(page).to_have_url(table_url)


def test_create_an_item_from_the_form(page: Page, catalog: LiveServer) -> None:
    sign_in(page, catalog, "user@example.com", path="/login?next=/items")
    page.wait_for_url(catalog.url + "/items")
    page.click("text=New item")
    page.fill("#f-name", "Desk lamp")
    page.fill("#f-description", "Brass, with a long arm.")
    page.fill("#f-price", "abc")
    page.click("text=Create item")
    expect(page.locator("#e-price")).to_have_text("Enter a price such as 12.50.")
    page.fill("#f-price", "49.90")
    page.click("text=Create item")
    expect(page.locator("h1")).to_have_text("Desk lamp")
    expect(page.locator(".details")).to_contain_text("Brass, with a long arm.")
    expect(page.locator(".details")).to_contain_text("$49.90")
    expect(page.locator(".flash-success")).to_contain_text("has been created")


def test_leaving_the_search_box_does_not_search_again(page: Page, catalog: LiveServer) -> None:
    """The search runs as you type; clicking a row's Edit afterwards must not re-run it
    (a late repeat would replace the table and wipe the inline editor)."""
    sign_in(page, catalog, "user@example.com", path="/login?next=/items")
    page.wait_for_url(catalog.url + "/items")
    page.fill("input[name=q]", "Item 1")
    expect(page.locator("#items-table .pager-summary")).to_contain_text("10 items")
    page.wait_for_load_state("networkidle")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/items?" in r.url else None)
    page.locator("#items-table tbody tr").first.get_by_role("link", name="Edit").click()
    expect(page.locator("#items-table tr.is-editing input[name=name]")).to_be_visible()
    page.wait_for_timeout(800)
    expect(page.locator("#items-table tr.is-editing")).to_have_count(1)
    assert searches == []
    page.select_option("select[name=status]", "active")  # the filter still searches on change
    expect(page).to_have_url(re.compile(r"status=active"))


def test_bulk_action_without_javascript_carries_the_csrf_token(
    browser: Browser, catalog: LiveServer
) -> None:
    """The token sits outside the cached table HTML and joins the form by its form= attribute."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, catalog, "user@example.com", path="/login?next=/items")
    page.goto(catalog.url + "/items?status=active&sort=name&dir=asc")
    first = rows(page)[0]
    page.locator("#items-table tbody tr").first.locator("input[name=ids]").check()
    page.select_option("select[name=action]", "archive")
    page.click("#bulk-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("Archived 1 item")
    assert first not in rows(page)  # gone from the active filter the page kept
    with catalog.app.app_context():
        assert db.session.query(Item).filter_by(name=first).one().status == "archived"
    context.close()
