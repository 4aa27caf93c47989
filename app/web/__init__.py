"""HTMX page blueprints, one per area."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Mount every page blueprint."""
    from app.web import home, ops

    app.register_blueprint(ops.bp)
    app.register_blueprint(home.bp)
