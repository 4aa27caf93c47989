"""Browser fixtures: a live server with one account per role."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from app.extensions import db
from tests.conftest import LiveServer
from tests.factories import PASSWORD, make_role_accounts


@pytest.fixture
def live_accounts(live_server: LiveServer) -> LiveServer:
    with live_server.app.app_context(), db.transaction() as session:
        make_role_accounts(session, name_suffix=" Person")
    return live_server


def sign_in(
    page: Page, server: LiveServer, email: str, password: str = PASSWORD, path: str = "/login"
) -> None:
    page.goto(server.url + path)
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("#login-form button[type=submit]")
