"""The admin users page: only admins, role and active changes, deletion."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, User
from tests.conftest import login
from tests.factories import PASSWORD

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}


def test_only_admins_reach_the_users_page(client: FlaskClient, accounts: dict[str, int]) -> None:
    assert client.get("/admin/users").status_code == 303  # anonymous: sign in first
    login(client, "user@example.com")
    assert client.get("/admin/users").status_code == 403
    client.post("/logout")
    login(client, "admin@example.com")
    html = client.get("/admin/users").get_data(as_text=True)
    assert all(f"{r}@example.com" in html for r in ("admin", "user", "guest"))


def test_users_table_fragment(as_admin: FlaskClient) -> None:
    response = as_admin.get(
        "/admin/users?q=guest", headers={**HX, "HX-Target": "section#users-table"}
    )
    html = response.get_data(as_text=True)
    assert 'id="users-table"' in html and "<html" not in html and "guest@example.com" in html
    assert "user@example.com" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_admin_changes_role_and_it_is_audited(
    app: Flask, as_admin: FlaskClient, accounts: dict[str, int]
) -> None:
    uid = accounts["guest"]
    response = as_admin.post(
        f"/admin/users/{uid}", data={"role": "user"}, headers={**HX, "HX-Target": f"tr#user-{uid}"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and f'id="user-{uid}"' in html and "<html" not in html
    with app.app_context():
        assert db.session.get(User, uid).role == "user"  # type: ignore[union-attr]
        row = db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "user.updated")
        ).one()
        assert (
            row.actor_id == accounts["admin"]
            and row.subject_id == str(uid)
            and row.data["role"] == "user"
        )


def test_bad_role_is_refused(as_admin: FlaskClient, accounts: dict[str, int]) -> None:
    uid = accounts["guest"]
    response = as_admin.post(
        f"/admin/users/{uid}",
        data={"role": "superuser"},
        headers={**HX, "HX-Target": f"tr#user-{uid}"},
    )
    assert response.status_code == 422 and "Role must be one of" in response.get_data(as_text=True)


def test_deactivation_ends_the_users_sessions(
    app: Flask, as_admin: FlaskClient, accounts: dict[str, int]
) -> None:
    victim = app.test_client()
    login(victim, "user@example.com")
    assert (
        as_admin.post(f"/admin/users/{accounts['user']}", data={"is_active": "0"}).status_code
        == 303
    )
    assert victim.get("/profile").status_code == 303
    assert login(app.test_client(), "user@example.com").status_code == 422


def test_a_refused_change_ends_no_sessions(
    app: Flask, as_admin: FlaskClient, accounts: dict[str, int]
) -> None:
    api = app.test_client()
    token = api.post(
        "/api/v1/auth/login", json={"email": "user@example.com", "password": PASSWORD}
    ).json["access_token"]  # type: ignore[index]
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/me", headers=bearer).status_code == 200
    refused = as_admin.post(
        f"/admin/users/{accounts['user']}",
        data={"role": "superuser", "is_active": "0"},
        headers={**HX, "HX-Target": f"tr#user-{accounts['user']}"},
    )
    assert refused.status_code == 422
    assert api.get("/api/v1/me", headers=bearer).status_code == 200  # the token still works
    with app.app_context():
        user = db.session.get(User, accounts["user"])
        assert user is not None and user.is_active and user.role == "user"


def test_admin_cannot_demote_or_delete_themselves(
    as_admin: FlaskClient, accounts: dict[str, int]
) -> None:
    me = accounts["admin"]
    assert as_admin.post(f"/admin/users/{me}", data={"role": "guest"}).status_code == 403
    assert as_admin.post(f"/admin/users/{me}/delete").status_code == 403


def test_delete_user(app: Flask, as_admin: FlaskClient, accounts: dict[str, int]) -> None:
    deleted = as_admin.post(
        f"/admin/users/{accounts['guest']}/delete",
        headers={**HX, "HX-Target": "div#users-table", "HX-Current-URL": "http://x/admin/users"},
    )
    html = deleted.get_data(as_text=True)
    assert deleted.status_code == 200 and deleted.headers["HX-Retarget"] == "#users-table"
    assert 'id="users-table"' in html and "<html" not in html  # the table, redrawn
    assert "guest@example.com" not in html.split('id="flashes"')[0]  # its row is gone
    assert "Deleted guest@example.com and everything they owned." in html  # the message
    assert "2 users" in html  # the count and pager follow
    with app.app_context():
        assert db.session.get(User, accounts["guest"]) is None
        assert db.session.scalars(
            select(AuditLog).where(AuditLog.event_type == "user.deleted")
        ).one()
    assert as_admin.post("/admin/users/99999/delete").status_code == 404
