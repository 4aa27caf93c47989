"""Mail transports: files in embedded mode, real SMTP against aiosmtpd."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from app.core.mail import FileMailTransport, Mail, SmtpMailTransport
from tests.conftest import free_port
from tests.factories import make_user

MAIL = Mail(
    to="ada@example.com",
    subject="Hello",
    text="Plain body",
    html="<p>HTML body</p>",
    sender="App <no-reply@example.com>",
)


class Inbox(Message):
    """aiosmtpd handler keeping every received message."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.Message] = []

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", inbox
    controller.stop()


def test_smtp_transport_delivers_to_a_real_server(smtp_server: tuple[str, Inbox]) -> None:
    url, inbox = smtp_server
    SmtpMailTransport(url).send(MAIL)
    assert len(inbox.messages) == 1
    received = inbox.messages[0]
    assert received["To"] == "ada@example.com" and received["Subject"] == "Hello"
    parsed = email.message_from_bytes(received.as_bytes(), policy=policy.default)
    assert "Plain body" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "HTML body" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_file_transport_writes_eml(tmp_path: Path) -> None:
    FileMailTransport(tmp_path / "mail").send(MAIL)
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Hello" and parsed["To"] == "ada@example.com"


def test_smtp_url_parsing() -> None:
    transport = SmtpMailTransport("smtps://me%40x.com:p%40ss@mail.example:2465")
    assert (transport.host, transport.port, transport.use_ssl) == ("mail.example", 2465, True)
    assert (transport.username, transport.password) == ("me@x.com", "p@ss")
    assert SmtpMailTransport("smtp://h?starttls=1").starttls
    with pytest.raises(ValueError, match="smtp://"):
        SmtpMailTransport("http://h")


def test_reset_email_arrives_over_smtp(
    smtp_server: tuple[str, Inbox], sqlite_url: str, tmp_path: Path
) -> None:
    from app import create_app
    from app.extensions import db
    from app.jobs.runner import get_runner
    from tests.conftest import make_settings

    url, inbox = smtp_server
    app = create_app(make_settings(tmp_path, database_url=sqlite_url, smtp_url=url))
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), db.transaction() as session:
        make_user(session, "ada@example.com")
    assert app.test_client().post("/forgot", data={"email": "ada@example.com"}).status_code == 200
    assert inbox.messages == []  # owed by the outbox, sent by a task, never in the request
    assert get_runner(app).drain() == 1
    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]
    assert "/reset/" in inbox.messages[0].as_string()
