"""Emails owed by the outbox: rendered from templates/emails/ and sent once per delivery.

A delivery already sent is skipped, so a message that runs twice (a redelivery, a
retry after a crash) reaches nobody twice; if the crash came between sending and
recording, the second copy carries the same Message-ID and mail clients show one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template
from jinja2 import TemplateNotFound

from app.core.mail import Mail
from app.core.metrics import EMAILS
from app.errors import NotFound
from app.extensions import db
from app.mail import get_mail_transport
from app.models.base import utcnow
from app.services import accounts, deliveries
from app.services import users as user_service
from app.services.accounts import RESET_TOKEN_MAX_AGE
from app.services.outbox import Message
from app.settings import get_settings


def deliver_email(message: Message, *, retry_in: float | None) -> None:
    """Send the email a message owes; `retry_in` is None on the last attempt."""
    template = message.kind.split(".", 1)[1]
    delivery_id = int(message.payload["delivery_id"])
    with db.transaction() as session:
        delivery = deliveries.start_attempt(session, delivery_id)
        if delivery is None:
            return  # sent already: a duplicate run
        recipient = delivery.recipient
        context = _context(session, template, message.payload)
    try:
        if context is None:
            raise LookupError("the account no longer exists")
        mail = render_email(template, recipient, context, message_id=_message_id(delivery_id))
        get_mail_transport().send(mail)
    except Exception as exc:
        EMAILS.labels(outcome="failed").inc()
        with db.transaction() as session:
            error = f"{type(exc).__name__}: {exc}"
            if retry_in is None:
                deliveries.mark_failed(session, delivery_id, error)
            else:
                next_at = utcnow() + timedelta(seconds=retry_in)
                deliveries.mark_retrying(session, delivery_id, error, next_at)
        raise
    with db.transaction() as session:
        delivery = deliveries.get_delivery(session, delivery_id)
        deliveries.mark_sent(session, delivery)
    EMAILS.labels(outcome="sent").inc()


def render_email(template: str, to: str, context: dict[str, Any], *, message_id: str) -> Mail:
    """`emails/<template>.{subject.txt,txt,html}` around the shared layout."""
    subject = render_template(f"emails/{template}.subject.txt", **context).strip()
    text = render_template(f"emails/{template}.txt", **context)
    try:
        html: str | None = render_template(f"emails/{template}.html", **context)
    except TemplateNotFound:
        html = None
    sender = get_settings().mail_from
    return Mail(to=to, subject=subject, text=text, html=html, sender=sender, message_id=message_id)


def _context(session: Any, template: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """What the template shows; None when the account it is about is gone."""
    settings = get_settings()
    try:
        user = user_service.get_user(session, int(payload["user_id"]))
    except (NotFound, KeyError, ValueError):
        return None
    extra = {k: v for k, v in payload.items() if k not in ("delivery_id", "user_id", "occurred_at")}
    context: dict[str, Any] = {
        **extra,
        "user": user,
        "app_url": settings.external_base,
        "occurred_at": _when(payload.get("occurred_at")),
        "ip": payload.get("ip"),
    }
    if template == "reset_password":  # made now, so no credential waits in the outbox
        token = accounts.make_reset_token(user, settings.secret_key)
        path = current_app.url_map.bind("localhost").build("auth.reset", {"token": token})
        context.update(link=settings.external_base + path, minutes=RESET_TOKEN_MAX_AGE // 60)
    return context


def _when(raw: Any) -> str:
    try:
        return datetime.fromisoformat(str(raw)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return ""


def _message_id(delivery_id: int) -> str:
    """One Message-ID per delivery: a resent copy is recognisably the same email."""
    host = urlsplit(get_settings().external_base).hostname or "ledgerly.local"
    return f"<delivery-{delivery_id}@{host}>"
