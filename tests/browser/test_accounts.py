"""Accounts in a real browser: sign in, inline profile edit, password change, roles, expiry."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.conftest import LiveServer
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_profile_journey(page: Page, live_accounts: LiveServer) -> None:
    server = live_accounts
    sign_in(page, server, "user@example.com", "wrong-password", path="/login?next=/profile")
    expect(page.locator("#login-form .flash-error")).to_contain_text("incorrect")
    page.fill("#f-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(server.url + "/profile")
    expect(page.locator("#profile-email")).to_have_text("user@example.com")

    page.click("#profile-card >> text=Edit")
    expect(page.locator("#profile-card form")).to_be_visible()
    page.fill("#f-name", "")
    page.fill("#f-name", " ")
    page.fill("#f-email", "admin@example.com")
    page.click("text=Save changes")
    expect(page.locator("#e-email")).to_have_text("Another account already uses this email.")
    expect(page.locator("#e-name")).to_have_text("Enter your name.")
    page.fill("#f-name", "Uma Renamed")
    page.fill("#f-email", "uma@example.com")
    page.click("text=Save changes")
    expect(page.locator("#e-email_password")).to_have_text(
        "Enter your current password to change your email."
    )
    expect(page.locator("#f-email_password")).to_be_focused()  # the cursor is where help is
    page.fill("#f-email_password", PASSWORD)
    page.click("text=Save changes")
    expect(page.locator("#profile-name")).to_have_text("Uma Renamed")
    expect(page.locator("#profile-email")).to_have_text("uma@example.com")
    assert page.url.endswith("/profile")  # swapped in place, no navigation

    page.fill("#f-current_password", PASSWORD)
    page.fill("#f-new_password", "a-new-password")
    page.fill("#f-confirm_password", "a-new-password")
    page.click("text=Change password")
    expect(page.locator("#password-form .flash-success")).to_contain_text("Password changed")
    page.reload()
    expect(page.locator("#profile-name")).to_have_text("Uma Renamed")  # still signed in here

    page.click("text=Sign out")
    page.wait_for_url(server.url + "/login")
    expect(page.locator(".flash")).to_contain_text("signed out")
    sign_in(page, server, "uma@example.com", "a-new-password")
    page.wait_for_url(server.url + "/")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_guest_sees_no_write_controls_and_forced_writes_fail(
    page: Page, live_accounts: LiveServer
) -> None:
    server = live_accounts
    sign_in(page, server, "guest@example.com", path="/login?next=/profile")
    page.wait_for_url(server.url + "/profile")
    expect(page.locator("#profile-card")).to_be_visible()
    expect(page.locator("text=Edit")).to_have_count(0)
    expect(page.locator("text=Change password")).to_have_count(0)
    status = page.evaluate(
        """async () => {
            const headers = JSON.parse(document.body.getAttribute('hx-headers:inherited'));
            const body = new URLSearchParams({name: 'Hacked', email: 'guest@example.com'});
            const r = await fetch('/profile', {method: 'POST', body, headers});
            return r.status;
        }"""
    )
    assert status == 403
    page.goto(live_accounts.url + "/admin/users")
    expect(page.locator("h1")).to_have_text("Access denied")


def test_expired_session_during_htmx_action_returns_after_sign_in(
    page: Page, live_accounts: LiveServer
) -> None:
    server = live_accounts
    sign_in(page, server, "user@example.com", path="/login?next=/profile")
    page.wait_for_url(server.url + "/profile")
    page.context.clear_cookies()  # the session expires while the page is open
    page.click("#profile-card >> text=Edit")
    page.wait_for_url(server.url + "/login?next=/profile")
    page.fill("#f-email", "user@example.com")
    page.fill("#f-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(live_accounts.url + "/profile")
    expect(page.locator("#profile-email")).to_have_text("user@example.com")
