"""Flask serves the built React client at /app/ with a history fallback, under the CSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.web import client as client_view

INDEX = '<!doctype html><script type="module" src="/app/assets/index-abc123.js"></script>'


@pytest.fixture
def build(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in build directory (the real one is made by `npm run build`)."""
    root = tmp_path / "app-build"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    monkeypatch.setattr(client_view, "build_dir", lambda: root)
    yield root


@pytest.mark.parametrize(
    "path", ["/app/", "/app/items", "/app/items?page=3&sort=name", "/app/a/b/c"]
)
def test_every_client_route_gets_index_html(client: FlaskClient, build: Path, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.get_data(as_text=True) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_assets_are_served_and_cached_for_good(client: FlaskClient, build: Path) -> None:
    response = client.get("/app/assets/index-abc123.js")
    assert response.status_code == 200 and response.get_data(as_text=True) == "console.log(1)"
    assert "immutable" in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    "path",
    ["/app/assets/gone-123.js", "/app/missing.png", "/app/../app.py", "/app/x.js" + "a" * 5000],
)
def test_missing_files_are_404_not_index_html(client: FlaskClient, build: Path, path: str) -> None:
    assert client.get(path).status_code == 404


def test_unbuilt_client_says_how_to_build_it(
    client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_view, "build_dir", lambda: tmp_path / "nothing")
    response = client.get("/app/items")
    assert response.status_code == 404 and "make frontend" in response.get_data(as_text=True)


def test_the_real_build_has_no_inline_script_and_nothing_from_elsewhere() -> None:
    index = Path(__file__).resolve().parents[2] / "static" / "app" / "index.html"
    if not index.exists():
        pytest.skip("the client is not built (make frontend)")
    html = index.read_text()
    assert "<script>" not in html and "<script " in html
    for tag in html.split("<script")[1:]:
        assert ' src="/app/assets/' in tag.split(">")[0]  # a file of ours, never inline
    assert "http://" not in html and "https://" not in html
