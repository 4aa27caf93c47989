"""Mail transports: files under instance/mail/ (embedded), SMTP, or memory (tests)."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
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


_STAMP = "%Y%m%dT%H%M%S"
_CAPTURED_NAME = re.compile(r"^(\d{8}T\d{6})-[0-9a-f]{8}\.eml$")


@dataclass(frozen=True, kw_only=True)
class CapturedMail:
    """A message the file transport wrote, read back for the development mail viewer."""

    name: str  # the file name, which is also its id in the viewer's URLs
    written_at: datetime
    to: str
    sender: str
    subject: str
    text: str
    html: str | None


class FileMailTransport:
    """Writes each message as an .eml file, so the embedded app needs no mail server;
    `captured` and `open` read them back (the admin mail viewer)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: Mail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime(_STAMP)
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(mail.to_message()))
        log.info("mail to %s written to %s", mail.to, path, extra={"subject": mail.subject})

    def captured(self, limit: int = 100) -> list[CapturedMail]:
        """The newest `limit` messages written, newest first."""
        if not self.directory.is_dir():
            return []
        paths = [p for p in self.directory.iterdir() if _CAPTURED_NAME.match(p.name)]
        paths.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        return [mail for p in paths[:limit] if (mail := self.open(p.name)) is not None]

    def open(self, name: str) -> CapturedMail | None:
        """One written message by file name; None for names it never wrote."""
        found = _CAPTURED_NAME.match(name)
        path = self.directory / name
        if found is None or not path.is_file():
            return None
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        return CapturedMail(
            name=name,
            written_at=datetime.strptime(found.group(1), _STAMP).replace(tzinfo=UTC),
            to=str(message.get("To", "")),
            sender=str(message.get("From", "")),
            subject=str(message.get("Subject", "")),
            text=text.get_content() if text is not None else "",
            html=html.get_content() if html is not None else None,
        )


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
