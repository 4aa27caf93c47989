"""Browser fixtures: a live server with one account per role."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from app.extensions import db
from app.services.users import create_user
from tests.conftest import FAST_ITERATIONS, PASSWORD, LiveServer


@pytest.fixture
def live_accounts(live_server: LiveServer) -> LiveServer:
    with live_server.app.app_context(), db.transaction() as session:
        for role in ("admin", "user", "guest"):
            create_user(
                session,
                email=f"{role}@example.com",
                name=f"{role.title()} Person",
                role=role,
                password=PASSWORD,
                iterations=FAST_ITERATIONS,
            )
    return live_server


def sign_in(
    page: Page, server: LiveServer, email: str, password: str = PASSWORD, path: str = "/login"
) -> None:
    page.goto(server.url + path)
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("#login-form button[type=submit]")
