"""The single call site for sending email: render the templates, hand to the transport.

The jobs work will queue this call instead of running it inline; callers stay the same.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, render_template
from jinja2 import TemplateNotFound

from app.core.mail import FileMailTransport, Mail, MailTransport, SmtpMailTransport
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


def send_email(to: str, template: str, **context: Any) -> Mail:
    """Render `emails/<template>.{subject,txt,html}` and send it."""
    settings: Settings = current_app.extensions["settings"]
    subject = render_template(f"emails/{template}.subject.txt", **context).strip()
    text = render_template(f"emails/{template}.txt", **context)
    try:
        html: str | None = render_template(f"emails/{template}.html", **context)
    except TemplateNotFound:
        html = None
    mail = Mail(to=to, subject=subject, text=text, html=html, sender=settings.mail_from)
    get_mail_transport().send(mail)
    return mail
