"""With Redis cut, a visitor still gets the sign-in page, and a signed-in page shows the
app's own 503 page (its look, a way to retry), never a bare server error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, expect

from app import create_app
from app.extensions import db
from tests.browser.conftest import sign_in
from tests.conftest import LiveServer, make_settings, require
from tests.factories import make_role_accounts
from tests.faults.proxy import FaultProxy

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    with FaultProxy.for_url(require("REDIS_URL")) as proxy:
        yield proxy


@pytest.fixture
def redis_server(sqlite_url: str, tmp_path: Path, redis_proxy: FaultProxy) -> Iterator[LiveServer]:
    prefix = f"test-outage-{uuid.uuid4().hex[:8]}"
    url = redis_proxy.url(require("REDIS_URL"))
    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, redis_url=url, redis_key_prefix=prefix)
    )
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    server = LiveServer(app).start()
    yield server
    server.stop()
    db.dispose(app)
    store = redis.Redis.from_url(require("REDIS_URL"))
    keys = list(store.scan_iter(f"{prefix}:*"))
    if keys:
        store.delete(*keys)


def test_with_redis_cut_sign_in_renders_and_pages_say_503(
    browser: Browser, redis_server: LiveServer, redis_proxy: FaultProxy, tmp_path: Path
) -> None:
    member = browser.new_context().new_page()
    sign_in(member, redis_server, "user@example.com", path="/login?next=/items")
    member.wait_for_url(redis_server.url + "/items")
    redis_proxy.cut()
    try:
        visitor = browser.new_context().new_page()
        visitor.goto(redis_server.url + "/login")
        expect(visitor.locator("#login-form")).to_be_visible()
        expect(visitor.get_by_role("link", name="Forgot your password?")).to_be_visible()

        response = member.goto(redis_server.url + "/items")
        assert response is not None and response.status == 503
        assert response.headers["retry-after"]
        expect(member.locator(".error-page h1")).to_have_text("Service temporarily unavailable")
        expect(member.locator(".error-page")).to_contain_text("try again in a few seconds")
        expect(member.locator(".brand")).to_be_visible()  # the app's look: its bar and stylesheet
        radius = member.locator(".error-page").evaluate("el => getComputedStyle(el).borderRadius")
        assert radius == "10px"
        expect(member.get_by_role("link", name="Try again")).to_have_attribute("href", "/items?")
        member.screenshot(path=str(tmp_path / "outage.png"))
    finally:
        redis_proxy.restore()
    member.wait_for_timeout(2300)  # the breaker's cooldown
    member.get_by_role("link", name="Try again").click()
    expect(member.locator("#items-table")).to_be_visible()  # the same session, back
