"""The React client (frontend/, built into static/app/) at /app/.

Files of the build are served as they are; any other path under /app/ gets the
client's index.html, so a deep link or a reload of /app/items?page=3 opens the
client at that screen (its router reads the URL). Missing assets stay 404: a
stale hashed file must not come back as HTML. The client signs in through the
API, never the session, so every route here is public.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

from app.errors import NotFound
from app.policy import policy

bp = Blueprint("client", __name__, url_prefix="/app")

BUILD_HINT = "The React client is not built: run `make frontend` (needs Node and npm)."
HASHED_ASSETS = "assets/"  # Vite puts a content hash in every name under here


def build_dir() -> Path:
    """Where `npm run build` writes the client."""
    return Path(current_app.static_folder or "static") / "app"


@bp.get("/")
@bp.get("/<path:path>")
@policy("public")
def client(path: str = "") -> Response:
    """A file of the build, or index.html for the client's own routes."""
    root = build_dir()
    if path and _is_file(root / path) and not path.endswith("index.html"):
        response = send_from_directory(root, path)
        if path.startswith(HASHED_ASSETS):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
    if path.startswith(HASHED_ASSETS) or Path(path).suffix:
        raise NotFound("No such file in the client.")
    if not _is_file(root / "index.html"):
        raise NotFound(BUILD_HINT)
    response = send_from_directory(root, "index.html")
    response.headers["Cache-Control"] = "no-cache"  # always ask: it names the current bundle
    return response


def _is_file(candidate: Path) -> bool:
    """False, not an error, for names the filesystem refuses (too long, NUL bytes)."""
    try:
        return candidate.is_file()
    except (OSError, ValueError):
        return False
