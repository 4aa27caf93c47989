"""Mail transports: files under instance/mail/ (embedded), SMTP, or memory (tests)."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Mail:
    """One outgoing email."""

    to: str
    subject: str
    text: str
    html: str | None = None
    sender: str
    message_id: str | None = None  # stable per delivery, so a duplicate shows as the same mail

    def to_message(self) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Message-ID"] = self.message_id or make_msgid(domain="ledgerly.local")
        message["Date"] = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        message.set_content(self.text)
        if self.html:
            message.add_alternative(self.html, subtype="html")
        return message


class MailTransport(Protocol):
    """Delivers a Mail or raises."""

    def send(self, mail: Mail) -> None: ...


class FileMailTransport:
    """Writes each message as an .eml file, so the embedded app needs no mail server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: Mail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(mail.to_message()))
        log.info("mail to %s written to %s", mail.to, path, extra={"subject": mail.subject})


class SmtpMailTransport:
    """SMTP from a URL: smtp://user:pass@host:port (add ?starttls=1) or smtps://host:465."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_ssl = parts.scheme == "smtps"
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true")
        self.timeout = timeout

    def send(self, mail: Mail) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            if self.use_ssl
            else smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        )
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail.to_message())
        log.info("mail to %s sent over SMTP", mail.to, extra={"subject": mail.subject})


class MemoryMailTransport:
    """Keeps messages in a list: the fake beside the real transports."""

    def __init__(self) -> None:
        self.outbox: list[Mail] = []
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> None:
        with self._lock:
            self.outbox.append(mail)
