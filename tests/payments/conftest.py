"""Payments against real fakes: localstripe (the official `stripe` client talks to it) and a
fake PayPal on loopback ports; a recording proxy in front of localstripe when a test needs
to see or drop what was sent."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models.item import Item
from tests.conftest import _build_app, free_port, make_settings, role_tokens
from tests.factories import make_role_accounts
from tests.payments.fake_paypal import FakePayPal
from tests.payments.proxy import RecordingProxy


def start_localstripe() -> tuple[subprocess.Popen[bytes], str]:
    """localstripe on a free port, once it accepts connections."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60  # a busy machine imports aiohttp slowly
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("localstripe did not start")


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    process, url = start_localstripe()
    yield url
    process.terminate()
    process.wait(5)


@pytest.fixture
def fake_paypal() -> Iterator[FakePayPal]:
    fake = FakePayPal().start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_proxy(localstripe: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(int(localstripe.rsplit(":", 1)[1])).start()
    yield proxy
    proxy.stop()


def closed_port_url() -> str:
    """A loopback address nothing listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def payments_app(tmp_path: Path, database_url: str, **overrides: Any) -> Flask:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        stripe_api_key="sk_test_ledgerly",
        paypal_client_id="ledgerly-client",
        paypal_client_secret="ledgerly-secret",
        stripe_webhook_secret="whsec_test_ledgerly",
        payment_timeout=2.0,
        **overrides,
    )
    app = _build_app(settings)
    with app.app_context(), db.transaction() as session:
        accounts = make_role_accounts(session)
        session.add_all(
            [
                Item(
                    owner_id=accounts["admin"], name="Lamp", price=Decimal("12.34"), status="active"
                ),
                Item(
                    owner_id=accounts["admin"],
                    name="Free sample",
                    price=Decimal("0"),
                    status="active",
                ),
            ]
        )
    return app


@pytest.fixture
def stripe_base(localstripe: str) -> str:
    """Where the app's Stripe client goes (a test may put a proxy or a closed port here)."""
    return localstripe


@pytest.fixture
def app(
    sqlite_url: str, tmp_path: Path, stripe_base: str, fake_paypal: FakePayPal
) -> Iterator[Flask]:
    """An app paying through localstripe (or `stripe_base`), falling back to the fake PayPal."""
    built = payments_app(
        tmp_path, sqlite_url, stripe_api_base=stripe_base, paypal_api_base=fake_paypal.url
    )
    yield built
    db.dispose(built)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tokens(api: FlaskClient) -> dict[str, dict[str, str]]:
    return role_tokens(api)


def item_id(app: Flask, name: str = "Lamp") -> int:
    with app.app_context():
        return int(db.session.query(Item.id).filter(Item.name == name).scalar())
