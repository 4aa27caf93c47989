"""The JSON API under /api/v1 (bearer tokens, problem JSON, no cookies, no CSRF)."""

from __future__ import annotations

from flask import Blueprint, Flask

from app.api import auth, handlers, items, openapi, payments, users, webhooks
from app.extensions import csrf


def register_api(app: Flask) -> None:
    """Mount /api/v1 and authenticate its requests by bearer token before policies run."""
    api = Blueprint("api", __name__, url_prefix=openapi.PREFIX)
    for child in (
        auth.bp,
        handlers.bp,
        items.bp,
        users.bp,
        webhooks.bp,
        payments.bp,
        openapi.bp,
    ):
        api.register_blueprint(child)
        csrf.exempt(child)
    app.before_request(auth.load_api_user)
    app.register_blueprint(api)
