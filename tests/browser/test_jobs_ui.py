"""Background work as an admin sees it, in Chromium: the mail viewer, a web import with
its progress bar, and a failed email sent again from the delivery ledger."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from app import create_app
from app.core.mail import FileMailTransport, Mail
from app.extensions import db
from app.jobs.runner import get_runner
from app.models import Delivery, OutboxMessage
from tests.browser.conftest import serious_axe_violations, sign_in
from tests.conftest import LiveServer, free_port, make_settings
from tests.factories import PASSWORD, make_role_accounts

pytestmark = pytest.mark.browser


@pytest.fixture
def dev_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """Like `make run`: mail written to files, links pointing at this server, jobs in-process."""
    port = free_port()
    settings = make_settings(
        tmp_path, database_url=sqlite_url, public_url="", port=port, jobs_mode="thread"
    )
    app = create_app(settings)
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=" Person")
    server = LiveServer(app, port).start()
    yield server
    server.stop()
    db.dispose(app)


def _admin(browser: Browser, server: LiveServer, path: str) -> Page:
    page = browser.new_context().new_page()
    sign_in(page, server, "admin@example.com", path=f"/login?next={path}")
    page.wait_for_url(server.url + path)
    return page


def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _no_serious_axe_problems(page: Page) -> None:
    assert serious_axe_violations(page) == [], page.url


def test_a_sign_up_shows_its_welcome_email_in_the_mail_viewer(
    browser: Browser, page: Page, dev_server: LiveServer
) -> None:
    page.goto(dev_server.url + "/register")
    page.fill("#f-name", "Ada Newcomer")
    page.fill("#f-email", "ada@example.com")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-confirm_password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(dev_server.url + "/")
    admin = _admin(browser, dev_server, "/admin/mail")
    row = admin.locator("tr", has_text="ada@example.com")
    for _ in range(50):  # written on the runner's thread right after the sign-up's commit
        if row.count():
            break
        admin.wait_for_timeout(100)
        admin.reload()
    expect(row).to_contain_text("Welcome to Ledgerly")
    row.get_by_role("link", name="Welcome to Ledgerly").click()
    expect(admin.get_by_role("heading", name="Welcome to Ledgerly")).to_be_visible()
    frame = admin.frame_locator("iframe.mail-frame")
    expect(frame.get_by_text("Hello Ada Newcomer")).to_be_visible()
    _no_serious_axe_problems(admin)


def test_a_reset_link_followed_from_the_mail_viewer_sets_a_new_password(
    browser: Browser, page: Page, dev_server: LiveServer
) -> None:
    page.goto(dev_server.url + "/forgot")
    page.fill("#f-email", "user@example.com")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.locator("#forgot-form")).to_contain_text("user@example.com")
    admin = _admin(browser, dev_server, "/admin/mail")
    link = admin.get_by_role("link", name=re.compile("Reset your"))
    for _ in range(50):
        if link.count():
            break
        admin.wait_for_timeout(100)
        admin.reload()
    link.click()
    admin.frame_locator("iframe.mail-frame").get_by_role(
        "link", name="Choose a new password"
    ).click()
    admin.wait_for_url(f"{dev_server.url}/reset/**")  # the top window, not the frame
    admin.fill("#f-new_password", "a brand new secret")
    admin.fill("#f-confirm_password", "a brand new secret")
    admin.get_by_role("button", name="Save new password").click()
    expect(admin.locator(".flash-success")).to_contain_text("Sign in with the new one")
    sign_in(page, dev_server, "user@example.com", "a brand new secret")
    page.wait_for_url(dev_server.url + "/")


def test_an_uploaded_csv_shows_progress_to_100_and_its_rejects(
    browser: Browser, dev_server: LiveServer, tmp_path: Path
) -> None:
    rows = ["email,name,role"]
    rows += [f"person{n}@example.com,Person {n}," for n in range(1, 301)]
    rows += ["not-an-email,Broken,", "user@example.com,Taken,", "someone@example.com,Odd,boss"]
    csv_file = tmp_path / "team.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    admin = _admin(browser, dev_server, "/admin/imports")
    admin.set_input_files("#f-file", str(csv_file))
    admin.get_by_role("button", name="Start import").click()
    admin.wait_for_url(f"{dev_server.url}/admin/imports/*")
    bar = admin.get_by_role("progressbar", name="Import progress")
    expect(bar).to_have_attribute("value", "100", timeout=15_000)
    expect(admin.locator("#import-progress .badge")).to_have_text("done")
    expect(admin.locator("#import-announce")).to_contain_text("300 imported, 2 rejected")
    rejects = admin.locator("#import-outcome")
    expect(rejects).to_contain_text("An email address must have an @-sign")
    expect(rejects).to_contain_text("already registered")
    expect(rejects).to_contain_text("must be one of admin, user, guest")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Download rejects CSV").click()
    assert download.value.suggested_filename == "team-rejects.csv"
    _no_serious_axe_problems(admin)
    admin.goto(dev_server.url + "/admin/imports")  # coming back later shows the outcome
    expect(admin.locator("tr", has_text="team.csv")).to_contain_text("done")


def test_a_bad_upload_says_why_and_starts_nothing(
    browser: Browser, dev_server: LiveServer, tmp_path: Path
) -> None:
    bad = tmp_path / "latin.csv"
    bad.write_bytes("email,name\nzoë@example.com,Zoë\n".encode("latin-1"))
    admin = _admin(browser, dev_server, "/admin/imports")
    admin.set_input_files("#f-file", str(bad))
    admin.get_by_role("button", name="Start import").click()
    expect(admin.locator("#e-file")).to_contain_text("is not UTF-8")
    expect(admin.locator("#f-file")).to_be_focused()
    expect(admin.locator("tr", has_text="latin.csv")).to_have_count(0)
    assert admin.url == dev_server.url + "/admin/imports"


class _Down(FileMailTransport):
    def send(self, mail: Mail) -> None:
        raise ConnectionRefusedError("the SMTP server is down")


def _delivery_state(app: Flask) -> str:
    with app.app_context():
        return db.session.scalars(select(Delivery.state)).first() or ""


def _rescheduled(app: Flask) -> bool:
    """The runner put the failed message back for its retry (so our change is not undone)."""
    with app.app_context():
        message = db.session.scalars(select(OutboxMessage)).first()
        return message is not None and message.published_at is None and message.attempts == 1


def test_a_failed_email_shows_in_the_ledger_and_retry_now_sends_it(
    browser: Browser, page: Page, dev_server: LiveServer, tmp_path: Path
) -> None:
    app = dev_server.app
    working = app.extensions["mail"]
    app.extensions["mail"] = _Down(tmp_path / "unused")
    page.goto(dev_server.url + "/forgot")
    page.fill("#f-email", "user@example.com")
    page.get_by_role("button", name="Send reset link").click()
    _until(lambda: _delivery_state(app) == "retrying" and _rescheduled(app))
    with app.app_context(), db.transaction() as session:  # spend the retries now
        message = session.scalars(select(OutboxMessage)).one()
        message.attempts, message.available_at = 5, message.created_at
    get_runner(app).wake()
    _until(lambda: _delivery_state(app) == "failed")
    app.extensions["mail"] = working  # the mail server is back

    admin = _admin(browser, dev_server, "/admin/deliveries")
    row = admin.locator("#deliveries-table tbody tr", has_text="user@example.com")
    expect(row.locator(".badge")).to_have_text("failed")
    expect(row).to_contain_text("the SMTP server is down")
    _no_serious_axe_problems(admin)
    row.get_by_role("button", name="Retry now").click()
    expect(row.locator(".badge")).to_have_text("pending")
    _until(lambda: _delivery_state(app) == "sent")
    admin.reload()
    expect(row.locator(".badge")).to_have_text("sent")
    expect(row.get_by_role("button", name="Retry now")).to_have_count(0)
    admin.goto(dev_server.url + "/admin/mail")
    expect(admin.get_by_role("link", name=re.compile("Reset your"))).to_be_visible()
    admin.goto(dev_server.url + "/admin/jobs")  # the given-up message was a dead letter,
    expect(admin.locator("#dead-title")).to_be_visible()  # resolved by the retry
    expect(admin.get_by_text("No dead letters.")).to_be_visible()
