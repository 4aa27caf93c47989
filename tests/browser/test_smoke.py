"""The live app in Chromium: htmx 4 loads, nothing errors in the console."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_pages_load_htmx_4_without_console_errors(page: Page, live_server: LiveServer) -> None:
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(live_server.url + "/")
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    assert str(page.evaluate("window.htmx.version")).startswith("4")
    assert page.locator("h1").inner_text() == "Sign in"  # the dashboard asks for a sign-in first
    assert page.url.endswith("/login?next=/")
    assert problems == []


def test_not_found_page_in_the_browser(page: Page, live_server: LiveServer) -> None:
    response = page.goto(live_server.url + "/nowhere")
    assert response is not None and response.status == 404
    assert "could not find that page" in page.locator("main").inner_text()
