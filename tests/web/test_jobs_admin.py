"""The admin pages of background work: the mail viewer, the delivery ledger, the jobs page."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.core.mail import Mail
from app.extensions import db
from app.mail import get_mail_transport
from app.models import Delivery, OutboxMessage
from app.services import outbox
from app.web.mailbox import PREVIEW_CSP, with_top_target
from tests.conftest import login
from tests.factories import PASSWORD

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}
ADMIN_PAGES = ("/admin/mail", "/admin/deliveries", "/admin/jobs", "/admin/imports")


def test_admin_pages_are_for_admins_only(client: FlaskClient, accounts: dict[str, int]) -> None:
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 303, path  # sign in first
    for who in ("user", "guest"):
        login(client, f"{who}@example.com")
        for path in ADMIN_PAGES:
            assert client.get(path).status_code == 403, (who, path)
        client.post("/logout")
    login(client, "admin@example.com")
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 200, path


# --- the mail viewer ---------------------------------------------------------------------


def _sign_up(client: FlaskClient, email: str = "ada@example.com") -> None:
    form = {"email": email, "name": "Ada", "password": PASSWORD, "confirm_password": PASSWORD}
    assert client.post("/register", data=form).status_code == 303


def _mail_names(html: str) -> list[str]:
    return re.findall(r'href="/admin/mail/([^"/]+\.eml)"', html)


def test_the_mail_viewer_lists_captured_mail_and_previews_it_safely(
    app: Flask, accounts: dict[str, int]
) -> None:
    _sign_up(app.test_client())  # the welcome email is written by the time the request ends
    admin = app.test_client()
    login(admin, "admin@example.com")
    listing = admin.get("/admin/mail").get_data(as_text=True)
    [name] = _mail_names(listing)
    assert "ada@example.com" in listing and "Welcome to Ledgerly" in listing
    page = admin.get(f"/admin/mail/{name}").get_data(as_text=True)
    [frame] = re.findall(r"<iframe\b[^>]*>", page)
    assert f'src="/admin/mail/{name}/preview"' in frame
    sandbox = re.search(r'sandbox="([^"]*)"', frame)
    assert sandbox is not None and "allow-scripts" not in sandbox.group(1)
    assert "allow-same-origin" not in sandbox.group(1)
    assert "http://localhost/login" in page  # the text part, links clickable
    preview = admin.get(f"/admin/mail/{name}/preview")
    assert preview.status_code == 200 and preview.mimetype == "text/html"
    assert preview.headers["Content-Security-Policy"] == PREVIEW_CSP
    assert "script-src" not in PREVIEW_CSP and "default-src 'none'" in PREVIEW_CSP
    assert "frame-ancestors 'self'" in PREVIEW_CSP
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert preview.headers.getlist("Content-Security-Policy") == [PREVIEW_CSP]  # not the default
    assert '<base target="_top">' in preview.get_data(as_text=True)
    # every other page keeps refusing to be framed
    assert admin.get("/admin/mail").headers["X-Frame-Options"] == "DENY"


def test_the_preview_is_for_admins_and_names_it_wrote(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    _sign_up(app.test_client())
    login(client, "admin@example.com")
    [name] = _mail_names(client.get("/admin/mail").get_data(as_text=True))
    for bad in ("..%2F..%2Fapp.sqlite3", "nothing.eml", "20260101T000000-zzzzzzzz.eml"):
        assert client.get(f"/admin/mail/{bad}").status_code == 404, bad
        assert client.get(f"/admin/mail/{bad}/preview").status_code == 404, bad
    client.post("/logout")
    login(client, "user@example.com")
    assert client.get(f"/admin/mail/{name}").status_code == 403
    assert client.get(f"/admin/mail/{name}/preview").status_code == 403


def test_links_in_a_preview_open_in_the_top_window() -> None:
    assert with_top_target("<html><HEAD lang=x><title>t</title></HEAD>") == (
        '<html><HEAD lang=x><base target="_top"><title>t</title></HEAD>'
    )
    assert with_top_target("<p>bare</p>") == '<base target="_top"><p>bare</p>'


def test_with_smtp_the_viewer_says_where_mail_goes(app: Flask, as_admin: FlaskClient) -> None:
    from app.core.mail import SmtpMailTransport

    app.extensions["mail"] = SmtpMailTransport("smtp://mail.example.com:2525")
    html = as_admin.get("/admin/mail").get_data(as_text=True)
    assert "mail.example.com:2525" in html and "not kept here" in html


def test_a_mail_without_html_has_no_frame(app: Flask, as_admin: FlaskClient) -> None:
    with app.app_context():
        get_mail_transport().send(
            Mail(to="x@example.com", subject="Plain", text="just text", sender="a@b.c")
        )
    [name] = _mail_names(as_admin.get("/admin/mail").get_data(as_text=True))
    page = as_admin.get(f"/admin/mail/{name}").get_data(as_text=True)
    assert "<iframe" not in page and "just text" in page
    assert as_admin.get(f"/admin/mail/{name}/preview").status_code == 404


# --- the delivery ledger -------------------------------------------------------------------


def _failed_delivery(app: Flask, state: str = "failed") -> int:
    _sign_up(app.test_client(), "fails@example.com")
    with app.app_context(), db.transaction() as session:
        delivery = session.scalars(select(Delivery)).one()
        delivery.state, delivery.last_error = (
            state,
            "ConnectionRefusedError: the SMTP server is down",
        )
        return delivery.id


def test_the_ledger_lists_deliveries_with_filters(app: Flask, as_admin: FlaskClient) -> None:
    _failed_delivery(app)
    html = as_admin.get("/admin/deliveries").get_data(as_text=True)
    assert "fails@example.com" in html and "badge-failed" in html and "SMTP server is down" in html
    assert "Retry now" in html
    sent = as_admin.get("/admin/deliveries?state=sent").get_data(as_text=True)
    assert "fails@example.com" not in sent and "No deliveries with state sent." in sent
    fragment = as_admin.get(
        "/admin/deliveries?q=fails", headers={**HX, "HX-Target": "div#deliveries-table"}
    )
    body = fragment.get_data(as_text=True)
    assert 'id="deliveries-table"' in body and "<html" not in body and "fails@example.com" in body
    assert "HX-Request" in fragment.headers["Vary"]


@pytest.mark.parametrize("state", ["failed", "dead"])
def test_retry_now_sends_a_failed_or_dead_delivery_again(
    app: Flask, as_admin: FlaskClient, state: str
) -> None:
    delivery_id = _failed_delivery(app, state)
    response = as_admin.post(
        f"/admin/deliveries/{delivery_id}/retry",
        headers={**HX, "HX-Target": f"tr#delivery-{delivery_id}"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and f'id="delivery-{delivery_id}"' in html
    assert "<html" not in html
    with app.app_context():  # the request's new message ran when it ended
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.state == "sent"
        assert (
            db.session.scalar(
                select(OutboxMessage.kind).where(OutboxMessage.id == delivery.message_id)
            )
            == "email.welcome"
        )


def test_retry_now_refuses_other_states_and_non_admins(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    delivery_id = _failed_delivery(app, "sent")
    login(client, "user@example.com")
    assert client.post(f"/admin/deliveries/{delivery_id}/retry").status_code == 403
    client.post("/logout")
    login(client, "admin@example.com")
    refused = client.post(
        f"/admin/deliveries/{delivery_id}/retry",
        headers={**HX, "HX-Target": f"tr#delivery-{delivery_id}"},
    )
    assert refused.status_code == 409
    assert "Only failed or dead deliveries can be retried" in refused.get_data(as_text=True)
    plain = client.post(f"/admin/deliveries/{delivery_id}/retry")
    assert plain.status_code == 303 and plain.headers["Location"].startswith("/admin/deliveries")
    assert client.post("/admin/deliveries/999999/retry").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Delivery.state)) == "sent"
        assert len(db.session.scalars(select(OutboxMessage)).all()) == 1  # nothing new owed


# --- the jobs page (embedded: the outbox) ---------------------------------------------------


def test_the_jobs_page_shows_the_outbox_and_retries_dead_letters(
    app: Flask, as_admin: FlaskClient
) -> None:
    delivery_id = _failed_delivery(app, "dead")
    with app.app_context(), db.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.message_id is not None
        outbox.mark_dead(session, delivery.message_id, "delivery-limit: after 5 deliveries")
        dead_id = delivery.message_id
    html = as_admin.get("/admin/jobs").get_data(as_text=True)
    assert "runs in this process" in html and "Dead letters" in html
    assert f'id="dead-{dead_id}"' in html and "after 5 deliveries" in html
    response = as_admin.post(f"/admin/jobs/dead/{dead_id}/retry")
    assert response.status_code == 303
    with app.app_context():
        old = db.session.get(OutboxMessage, dead_id)
        assert (
            old is not None
            and old.dead_at is None
            and "retried as message" in (old.last_error or "")
        )
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None and delivery.state == "sent"
    after = as_admin.get("/admin/jobs").get_data(as_text=True)
    assert f'id="dead-{dead_id}"' not in after and "No dead letters." in after
    assert as_admin.post(f"/admin/jobs/dead/{dead_id}/retry").status_code == 409
    assert as_admin.post("/admin/jobs/rq/some-job/requeue").status_code == 404  # no queues here


def test_a_message_the_embedded_runner_gave_up_on_is_a_dead_letter(
    app: Flask, as_admin: FlaskClient
) -> None:
    with app.app_context(), db.transaction() as session:
        message = outbox.add_message(session, "job.user_import", {"import_run_id": 424242})
        outbox.mark_published(session, [message.id])
        outbox.give_up(session, message.id, "RuntimeError('boom')")
        dead_id = message.id
    html = as_admin.get("/admin/jobs").get_data(as_text=True)
    assert f'id="dead-{dead_id}"' in html and "every retry failed" in html
    assert as_admin.post(f"/admin/jobs/dead/{dead_id}/retry").status_code == 303
    with app.app_context():
        kinds = db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
        assert kinds == ["job.user_import", "job.user_import"]  # a copy went (and ran: no-op)
