"""The app's mail transport: SMTP when SMTP_URL is set, else .eml files under instance/mail/.

Emails are rendered and sent by tasks (app/jobs/emails.py), never inside a request.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.core.mail import FileMailTransport, MailTransport, SmtpMailTransport
from app.settings import Settings


def init_mail(app: Flask, settings: Settings) -> MailTransport:
    """SMTP when SMTP_URL is set, otherwise .eml files under instance/mail/."""
    transport: MailTransport = (
        SmtpMailTransport(settings.smtp_url)
        if settings.smtp_url
        else FileMailTransport(settings.instance_path / "mail")
    )
    app.extensions["mail"] = transport
    return transport


def get_mail_transport() -> MailTransport:
    """The current app's transport (tests may swap in MemoryMailTransport)."""
    transport: MailTransport = current_app.extensions["mail"]
    return transport
