"""Application factory: a table of contents of what the app is made of."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import caching, cli, edge, events, templating, web
from app.api import register_api
from app.core import logging as app_logging
from app.core.flask_app import App
from app.core.middleware import register_middleware
from app.core.prometheus import SCRAPE_ENDPOINT, init_metrics
from app.core.redis_conn import init_redis
from app.extensions import csrf, db
from app.jobs import init_jobs
from app.json import SafeJSONProvider
from app.mail import init_mail
from app.payments import init_payments
from app.policy import register_policy_enforcement
from app.readiness import register_readiness_metrics
from app.security import init_security
from app.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings`, or from the environment when none are given."""
    settings = settings or Settings.from_env()
    settings.check()
    settings.instance_path.mkdir(parents=True, exist_ok=True)  # SQLite file, mail, uploads
    app_logging.configure_logging(settings.log_level, json_lines=settings.log_json)

    app = App(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_path=str(settings.instance_path),
    )
    app.json = SafeJSONProvider(app)
    configure(app, settings)
    register_middleware(app, hsts=settings.preferred_url_scheme == "https")
    db.init_app(
        app,
        url=settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        echo=settings.db_echo,
    )
    init_redis(app, settings.redis_url)
    csrf.init_app(app)
    init_security(app, settings)
    init_mail(app, settings)
    init_payments(app, settings)
    caching.init_caching(app, settings)
    if settings.metrics_enabled:
        init_metrics(app, token=settings.metrics_token)
        register_readiness_metrics(app)  # app_service_up: the checks /readyz runs
    events.register_event_handlers()
    init_jobs(app, settings)
    templating.register_template_helpers(app)
    edge.register_error_handlers(app)
    register_api(app)
    web.register_blueprints(app)
    register_policy_enforcement(app, public_endpoints=(SCRAPE_ENDPOINT,))
    cli.register_commands(app)
    return app


def configure(app: Flask, settings: Settings) -> None:
    """Copy settings into Flask's config, keeping the typed object at hand."""
    secure = settings.preferred_url_scheme == "https"
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.env == "testing",
        PREFERRED_URL_SCHEME=settings.preferred_url_scheme,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # tokens live as long as the session
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the policy hook, after authentication
        REGISTRATION_ENABLED=settings.registration_enabled,
    )
    app.extensions["settings"] = settings
    if settings.trusted_proxies:  # client IPs for limits and the audit come from X-Forwarded-For
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
