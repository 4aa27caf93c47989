"""The remembered page chrome: the nav follows who is signed in, where they are, their
session and name at once; the head's assets are the hashed URLs."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from app.web.chrome import MAX_REMEMBERED, head_assets
from tests.conftest import login


def _nav(html: str) -> str:
    found = re.search(r'<nav class="nav" aria-label="Main">(.*?)</nav>', html, re.S)
    assert found, "no main nav"
    return found.group(1)


def _current(nav: str) -> list[str]:
    return re.findall(r'<a [^>]*?href="([^"]+)"[^>]*aria-current="page"', nav)


def test_the_nav_marks_the_page_the_user_is_on(as_user: FlaskClient) -> None:
    items = _nav(as_user.get("/items").get_data(as_text=True))
    profile = _nav(as_user.get("/profile").get_data(as_text=True))
    home = _nav(as_user.get("/").get_data(as_text=True))

    assert _current(items) == ["/items"]
    assert _current(profile) == ["/profile"]  # the person's own link, beside their name
    assert _current(home) == ["/"]
    assert "Admin" not in items and "Sign out" in items


def test_each_person_and_session_gets_their_own_nav(app: Flask, accounts: dict[str, int]) -> None:
    admin, user, again = app.test_client(), app.test_client(), app.test_client()
    login(admin, "admin@example.com")
    login(user, "user@example.com")
    login(again, "user@example.com")  # the same person in a second session

    def token(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', _nav(html))
        assert found
        return found.group(1)

    admin_html = admin.get("/items").get_data(as_text=True)
    user_html = user.get("/items").get_data(as_text=True)
    again_html = again.get("/items").get_data(as_text=True)

    assert "Audit log" in _nav(admin_html) and "Audit log" not in _nav(user_html)
    assert "badge-admin" in _nav(admin_html) and "badge-user" in _nav(user_html)
    # Each session's sign-out form carries that session's token, which signs its writes.
    assert token(user_html) != token(again_html)
    for client, html in ((user, user_html), (again, again_html)):
        assert client.post("/logout", data={"csrf_token": token(html)}).status_code == 303


def test_a_new_name_shows_in_the_nav_at_once(as_user: FlaskClient) -> None:
    assert "Renamed Uma" not in _nav(as_user.get("/items").get_data(as_text=True))
    as_user.post("/profile", data={"name": "Renamed Uma", "email": "user@example.com"})
    assert "Renamed Uma" in _nav(as_user.get("/items").get_data(as_text=True))


def test_visitors_get_the_sign_in_nav(client: FlaskClient) -> None:
    nav = _nav(client.get("/login").get_data(as_text=True))
    assert _current(nav) == ["/login"]
    assert "Sign out" not in nav and "csrf_token" not in nav


def test_remembered_navs_are_bounded(app: Flask, as_user: FlaskClient) -> None:
    as_user.get("/items")
    kept = app.extensions["remembered_chrome"]
    for n in range(MAX_REMEMBERED + 5):
        kept[("filler", n)] = "x"
    as_user.get("/profile")  # a nav not seen yet: room is made for it
    assert len(kept) <= MAX_REMEMBERED
    assert "Sign out" in _nav(as_user.get("/items").get_data(as_text=True))


def test_head_assets_are_the_hashed_static_urls(app: Flask, client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    vendor = app.jinja_env.globals["htmx_vendor"]
    with app.test_request_context("/login"):
        url = app.jinja_env.globals["asset_url"]
        expected = (
            f'<link rel="stylesheet" href="{url("css/app.css")}">\n'
            f'  <link rel="icon" href="{url("img/favicon.svg")}" type="image/svg+xml">\n'
            f'  <script src="{url("vendor/htmx/" + vendor["file"])}"\n'
            f'          integrity="{vendor["integrity"]}" defer></script>\n'
            f'  <script src="{url("js/app.js")}" defer></script>'
        )
        assert str(head_assets()) == expected
    assert f"  {expected}\n</head>" in html and "?v=" in expected


def test_assets_follow_the_mount_point(app: Flask) -> None:
    with app.test_request_context("/login"):
        plain = str(head_assets())
    with app.test_request_context("/login", base_url="http://localhost/ledgerly/"):
        mounted = str(head_assets())
    assert 'href="/static/css/app.css' in plain
    assert (
        'href="/ledgerly/static/css/app.css' in mounted and "/ledgerly/static/js/app.js" in mounted
    )
