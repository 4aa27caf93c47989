"""The profile page: view, inline edit with 422s, password change, sign-out everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.extensions import db
from app.models import User
from tests.conftest import login
from tests.factories import PASSWORD

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}


def test_profile_shows_the_signed_in_user(as_user: FlaskClient) -> None:
    html = as_user.get("/profile").get_data(as_text=True)
    assert "user@example.com" in html and 'id="profile-card"' in html and "<html" in html


def test_viewing_the_profile_reads_no_account_row(as_user: FlaskClient) -> None:
    """The page shows the identity the request loaded; reading the row again cost half
    the page's CPU (a pooled connection, a transaction, the statement)."""
    as_user.get("/profile")  # the identity snapshot is cached from here on
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        html = as_user.get("/profile").get_data(as_text=True)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert "user@example.com" in html
    assert not [s for s in statements if "user_account" in s]


def test_the_viewed_profile_follows_a_change_at_once(as_user: FlaskClient) -> None:
    assert "Just Uma" not in as_user.get("/profile").get_data(as_text=True)
    as_user.post("/profile", data={"name": "Just Uma", "email": "user@example.com"})
    assert "Just Uma" in as_user.get("/profile").get_data(as_text=True)


def test_edit_fragment_is_a_form_without_layout(as_user: FlaskClient) -> None:
    response = as_user.get("/profile/edit", headers={**HX, "HX-Target": "section#profile-card"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="profile-card"' in html and "<form" in html and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_save_returns_the_card_and_persists(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    response = as_user.post(
        "/profile",
        data={"name": "Uma Updated", "email": "uma@example.com", "email_password": PASSWORD},
        headers={**HX, "HX-Target": "section#profile-card"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Uma Updated" in html and "<html" not in html
    with app.app_context():
        user = db.session.get(User, accounts["user"])
        assert (user.name, user.email) == ("Uma Updated", "uma@example.com")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (None, "Enter your current password to change your email."),
        ("", "Enter your current password to change your email."),
        ("not-my-password", "That is not your current password."),
    ],
)
def test_a_new_email_needs_the_current_password(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int], password: str | None, message: str
) -> None:
    """Resets go to the email: a borrowed session must not be able to redirect them."""
    data = {"name": "Uma Updated", "email": "thief@example.com"}
    if password is not None:
        data["email_password"] = password
    response = as_user.post(
        "/profile", data=data, headers={**HX, "HX-Target": "section#profile-card"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html
    assert 'id="e-email_password"' in html and 'aria-invalid="true"' in html
    assert html.count('id="f-email_password"') == 1
    with app.app_context():
        user = db.session.get(User, accounts["user"])
        assert (user.name, user.email) == ("User", "user@example.com")  # type: ignore[union-attr]


def test_a_name_change_alone_needs_no_password(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    response = as_user.post("/profile", data={"name": "Just Uma", "email": "user@example.com"})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(User, accounts["user"]).name == "Just Uma"  # type: ignore[union-attr]


def test_invalid_edit_is_422_with_messages_beside_fields(as_user: FlaskClient) -> None:
    response = as_user.post(
        "/profile",
        data={"name": "", "email": "admin@example.com"},
        headers={**HX, "HX-Target": "section#profile-card"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="e-name"' in html and "Enter your name." in html
    assert 'id="e-email"' in html and "Another account already uses this email." in html


def test_forbidden_fields_on_the_form_are_ignored(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    as_user.post(
        "/profile",
        data={
            "name": "Sneaky",
            "email": "user@example.com",
            "role": "admin",
            "is_active": "0",
            "id": "999",
            "auth_epoch": "5",
        },
    )
    with app.app_context():
        user = db.session.get(User, accounts["user"])
        assert user is not None
        assert (user.name, user.role, user.is_active, user.id) == (
            "Sneaky",
            "user",
            True,
            accounts["user"],
        )


def test_change_password_needs_the_current_one(as_user: FlaskClient) -> None:
    response = as_user.post(
        "/profile/password",
        data={
            "current_password": "wrong-one-here",
            "new_password": "new-password-1",
            "confirm_password": "new-password-1",
        },
    )
    assert (
        response.status_code == 422
        and "That is not your current password." in response.get_data(as_text=True)
    )


def test_change_password_keeps_this_session_and_ends_the_others(
    app: Flask, accounts: dict[str, int]
) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "user@example.com")
    login(elsewhere, "user@example.com", remember="on")
    response = here.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": "new-password-1",
            "confirm_password": "new-password-1",
        },
    )
    assert response.status_code == 200 and "Password changed" in response.get_data(as_text=True)
    assert here.get("/profile").status_code == 200
    assert elsewhere.get("/profile").status_code == 303  # session and remember cookie both refused
    assert login(app.test_client(), "user@example.com", "new-password-1").status_code == 303


def test_sign_out_everywhere(app: Flask, accounts: dict[str, int]) -> None:
    a, b = app.test_client(), app.test_client()
    login(a, "user@example.com")
    login(b, "user@example.com")
    assert a.post("/profile/sessions/end").status_code == 303
    assert a.get("/profile").status_code == 303
    assert b.get("/profile").status_code == 303


def test_guest_sees_no_write_controls_and_cannot_write(as_guest: FlaskClient) -> None:
    html = as_guest.get("/profile").get_data(as_text=True)
    assert "/profile/edit" not in html and "Change password" not in html
    assert as_guest.get("/profile/edit").status_code == 403
    assert as_guest.post("/profile", data={"name": "Hacked"}).status_code == 403
    assert as_guest.post("/profile/password", data={}).status_code == 403
