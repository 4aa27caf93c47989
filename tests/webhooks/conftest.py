"""Fixtures for webhook tests: a loopback receiver, and an app allowed to send to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from tests.conftest import _build_app, make_settings, role_tokens
from tests.factories import make_role_accounts
from tests.webhooks.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = start_receiver()
    yield found
    found.stop()


@pytest.fixture
def api_app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The web app (outbox run after each request) with 127.0.0.1 allowlisted for receivers."""
    settings = make_settings(
        tmp_path, database_url=sqlite_url, webhook_allowed_networks="127.0.0.1/32"
    )
    app = _build_app(settings)
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    yield app
    db.dispose(app)


@pytest.fixture
def api(api_app: Flask) -> FlaskClient:
    return api_app.test_client()


@pytest.fixture
def tokens(api: FlaskClient) -> dict[str, dict[str, str]]:
    return role_tokens(api)
