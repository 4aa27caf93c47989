"""The React client, built and served by Flask at /app/, driven in Chromium against the
full stack where it is configured (PostgreSQL and Redis: see `stack_server`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from app.core.token_store import RedisTokenStore
from app.extensions import db
from app.models import Item, User
from tests.browser.conftest import serious_axe_violations
from tests.conftest import LiveServer
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

BUILD = Path(__file__).resolve().parents[2] / "static" / "app" / "index.html"
PROVOKED = "422 (UNPROCESSABLE ENTITY)"
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "react-client"


@pytest.fixture
def client_app(stack_server: LiveServer) -> LiveServer:
    """The live server with 60 items of user@example.com and one of the admin's."""
    if not BUILD.exists():
        pytest.skip("the React client is not built: make frontend (make test builds it first)")
    with stack_server.app.app_context(), db.transaction() as session:
        owner = session.query(User).filter_by(email="user@example.com").one()
        admin = session.query(User).filter_by(email="admin@example.com").one()
        session.add_all(
            Item(owner_id=owner.id, name=f"Item {n:02}", price=Decimal(n) + Decimal("0.50"))
            for n in range(1, 61)
        )
        session.add(Item(owner_id=admin.id, name="Admin lamp", price=Decimal("9.99")))
    return stack_server


@pytest.fixture
def errors(page: Page) -> Iterator[list[str]]:
    """Console errors and uncaught exceptions: there must be none."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    yield seen


def sign_in(page: Page, server: LiveServer, email: str, path: str = "/app/items") -> None:
    page.goto(server.url + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".nav-button")).to_have_text("Sign out")  # folded away on a phone


def expect_first_names(page: Page, *first: str) -> None:
    """Wait for the table to settle with these first rows (a sort or page answers later
    than the header and the URL change: never read the rows before they are replaced)."""
    expect(page.locator(".datatable")).to_have_attribute("aria-busy", "false")
    cells = page.locator("tbody td[data-label=Name]")
    for n, name in enumerate(first):
        expect(cells.nth(n)).to_have_text(name)


RUNNING = "document.getAnimations().some(a => a.playState === 'running')"


def settled(page: Page, seconds: float = 5.0) -> None:
    """Wait until nothing loads and no CSS transition runs: mid-fade the table is still pale
    (a screenshot looks broken, axe sees poor contrast). No wait_for_function: it evals,
    which the app's CSP refuses."""
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    deadline = time.monotonic() + seconds
    while page.evaluate(RUNNING):
        assert time.monotonic() < deadline, "transitions still running"
        page.wait_for_timeout(50)


def test_owner_journey(page: Page, client_app: LiveServer, errors: list[str]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, client_app, "user@example.com")
    expect(page.get_by_role("heading", name="Items")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(25)

    page.reload()  # the token was in memory only; the refresh cookie brings the session back
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(25)

    page.get_by_role("columnheader", name="Name").get_by_role("button").click()
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page).to_have_url(f"{client_app.url}/app/items?sort=name&dir=asc")
    expect_first_names(page, "Admin lamp", "Item 01")
    page.get_by_role("button", name="Next ›").click()
    expect(page).to_have_url(f"{client_app.url}/app/items?sort=name&dir=asc&page=2")
    expect_first_names(page, "Item 25", "Item 26")
    page.get_by_role("searchbox").fill("Item 4")
    expect(page).to_have_url(f"{client_app.url}/app/items?sort=name&dir=asc&q=Item+4")
    expect(page.locator("tbody tr")).to_have_count(10)  # Item 40..49
    page.reload()  # a deep link keeps its state
    expect(page.get_by_role("searchbox")).to_have_value("Item 4")
    expect(page.locator("tbody tr")).to_have_count(10)
    settled(page)
    page.screenshot(path=str(SHOTS / "items-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "items-phone.png"))
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(client_app.url + "/app/profile")
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name").fill("Renamed Person")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(page.locator(".details")).to_contain_text("Renamed Person")
    page.screenshot(path=str(SHOTS / "profile-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "profile-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(client_app.url + "/app/items")  # no session comes back
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    refused = page.request.post(client_app.url + "/api/v1/auth/refresh")
    assert refused.status == 204  # the cookie is gone from the browser...
    # Chromium logs every 4xx answer; the only one is the 422 the empty name asked for.
    assert errors == [f"Failed to load resource: the server responded with a status of {PROVOKED}"]


def test_the_old_refresh_cookie_is_dead_after_sign_out(
    page: Page, client_app: LiveServer, errors: list[str]
) -> None:
    sign_in(page, client_app, "user@example.com")
    cookie = next(c for c in page.context.cookies() if c["name"] == "refresh_token")
    assert (
        cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/api/v1/auth"
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.context.add_cookies([cookie])  # ...and a copy kept from before no longer works
    replayed = page.request.post(client_app.url + "/api/v1/auth/refresh")
    assert replayed.status == 401
    assert errors == []


def test_two_tabs_restoring_at_once_stay_signed_in(
    page: Page, client_app: LiveServer, errors: list[str]
) -> None:
    """Two tabs reloading together both send the cookie the first one is about to spend:
    the second, inside the grace window, gets the same successor instead of ending the
    sign-in (on the full stack, the Redis token store decides)."""
    sign_in(page, client_app, "user@example.com")
    spent = next(c for c in page.context.cookies() if c["name"] == "refresh_token")
    first = page.request.post(client_app.url + "/api/v1/auth/refresh")
    successor = next(c for c in page.context.cookies() if c["name"] == "refresh_token")
    page.context.add_cookies([spent])  # the other tab's request left with the old cookie
    second = page.request.post(client_app.url + "/api/v1/auth/refresh")
    assert first.status == second.status == 200
    now = next(c for c in page.context.cookies() if c["name"] == "refresh_token")
    assert now["value"] == successor["value"] != spent["value"]
    page.reload()
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.locator(".nav-button")).to_have_text("Sign out")
    assert errors == []


def test_guest_sees_no_write_controls(
    page: Page, client_app: LiveServer, errors: list[str]
) -> None:
    sign_in(page, client_app, "guest@example.com")
    expect(page.locator("tbody tr")).to_have_count(25)
    expect(page.get_by_role("button", name="New item")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit", exact=False)).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    page.goto(client_app.url + "/app/profile")
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_role("heading", name="Change password")).to_have_count(0)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(client_app.url + "/app/items")
    expect(page.locator("tbody tr")).to_have_count(25)
    SHOTS.mkdir(parents=True, exist_ok=True)
    settled(page)
    page.screenshot(path=str(SHOTS / "items-guest-phone.png"))
    assert errors == []


def test_the_client_runs_on_the_configured_services(
    page: Page, client_app: LiveServer, errors: list[str]
) -> None:
    """With DATABASE_URL and REDIS_URL (CI), the session lives in Redis and the rows in
    PostgreSQL, as in production; without them the embedded defaults stand in."""
    app = client_app.app
    on_postgres = db.engine_for(app).dialect.name == "postgresql"
    assert on_postgres == bool(os.environ.get("DATABASE_URL"))
    assert isinstance(app.extensions["token_store"], RedisTokenStore) == bool(
        os.environ.get("REDIS_URL")
    )
    sign_in(page, client_app, "user@example.com")
    expect(page.locator("tbody tr")).to_have_count(25)
    if os.environ.get("REDIS_URL"):
        store = redis.Redis.from_url(os.environ["REDIS_URL"])
        prefix = app.extensions["settings"].redis_key_prefix
        assert list(store.scan_iter(f"{prefix}:token-family:*"))  # the sign-in's refresh family
        store.close()
    assert errors == []


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_axe_finds_nothing_serious_on_the_client_screens(
    browser: Browser, client_app: LiveServer, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def check(screen: str) -> None:
        settled(page)
        problems.extend(f"{screen}: {v}" for v in serious_axe_violations(page))

    page.goto(client_app.url + "/app/items")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check("sign-in")
    page.get_by_role("button", name="Sign in").click()  # empty: the field errors
    expect(page.locator(".field-error").first).to_be_visible()
    check("sign-in with errors")
    sign_in(page, client_app, "user@example.com")
    expect(page.locator("tbody tr")).to_have_count(25)
    check("items")
    page.get_by_role("button", name="New item").click()
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_be_visible()
    check("new item")
    page.goto(client_app.url + "/app/profile")
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    check("profile")
    page.get_by_role("button", name="Edit").click()
    check("profile, editing")
    context.close()
    assert problems == []
