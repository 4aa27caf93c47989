"""The development mail viewer: messages the file transport wrote, with a safe preview.

Only the embedded default keeps mail (instance/mail/); with SMTP_URL the page says
where mail goes instead. The preview is an HTML response of its own, shown in a
sandboxed iframe (no scripts, an opaque origin) and served with a CSP that allows
nothing but inline styles and data: images, framed only by our own pages. Its links
open in the top window, so a reset link works from here.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, make_response

from app.core.mail import CapturedMail, FileMailTransport, SmtpMailTransport
from app.errors import NotFound
from app.htmx import render
from app.mail import get_mail_transport
from app.policy import policy

bp = Blueprint("mail", __name__, url_prefix="/admin/mail")

SHOWN = 100
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
TOP_TARGET = '<base target="_top">'


@bp.get("")
@policy("admin")
def index() -> Response:
    """The newest captured messages, or where mail goes when it is not kept here."""
    transport = get_mail_transport()
    files = transport if isinstance(transport, FileMailTransport) else None
    return render(
        "admin/mail.html",
        messages=files.captured(SHOWN) if files else [],
        directory=files.directory if files else None,
        smtp_host=_smtp_host(transport),
        shown=SHOWN,
    )


@bp.get("/<name>")
@policy("admin")
def show(name: str) -> Response:
    """One message: its headers, the HTML in a sandboxed frame, and the text part."""
    return render("admin/mail_message.html", mail=_captured(name))


@bp.get("/<name>/preview")
@policy("admin")
def preview(name: str) -> Response:
    """The message's HTML on its own, for the sandboxed frame (see the module docstring)."""
    mail = _captured(name)
    if mail.html is None:
        raise NotFound("This message has no HTML part.")
    response = make_response(with_top_target(mail.html))
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def with_top_target(html: str) -> str:
    """Make every link in the message open in the top window, not inside the frame."""
    if _HEAD.search(html):
        return _HEAD.sub(lambda m: m.group(0) + TOP_TARGET, html, count=1)
    return TOP_TARGET + html


def _captured(name: str) -> CapturedMail:
    transport = get_mail_transport()
    mail = transport.open(name) if isinstance(transport, FileMailTransport) else None
    if mail is None:
        raise NotFound("No such message.")
    return mail


def _smtp_host(transport: object) -> str | None:
    if isinstance(transport, SmtpMailTransport):
        return f"{transport.host}:{transport.port}"
    return None
