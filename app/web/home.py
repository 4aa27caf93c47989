"""The landing page: what the app holds at a glance."""

from __future__ import annotations

from flask import Blueprint, Response

from app.extensions import db
from app.htmx import render
from app.policy import policy
from app.services.overview import overview

bp = Blueprint("home", __name__)


@bp.get("/")
@policy("read")
def index() -> Response:
    """Counts and the most recent items."""
    return render("home/index.html", overview=overview(db.session))
