"""HTMX page blueprints, one per area."""

from __future__ import annotations

from flask import Flask

from app.web import admin, auth, home, items, ops, profile, webhooks


def register_blueprints(app: Flask) -> None:
    """Mount every page blueprint."""
    for module in (ops, auth, home, items, profile, admin, webhooks):
        app.register_blueprint(module.bp)
