"""One typed, frozen Settings object, read from the environment by create_app only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flask import Flask, current_app

from app.core.netguard import Rules, parse_networks

Environment = Literal["development", "production", "testing"]
JobsMode = Literal["broker", "thread", "manual"]

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"


class SettingsError(RuntimeError):
    """The environment describes a configuration the app refuses to start with."""


def normalize_database_url(url: str) -> str:
    """Map the URL forms hosting platforms hand out onto SQLAlchemy's psycopg 3 driver."""
    url = url.strip()
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:"):
        return url
    scheme = url.split(":", 1)[0] or "(empty)"
    raise SettingsError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use postgresql://... or sqlite:///path"
    )


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _jobs_mode(raw: str | None) -> JobsMode | None:
    value = (raw or "").strip().lower()
    if not value:
        return None
    if value not in ("broker", "thread", "manual"):
        raise SettingsError(f"JOBS_MODE must be broker, thread or manual, not {value!r}")
    return value  # type: ignore[return-value]


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the app reads from outside. Tests build one directly."""

    env: Environment = "development"
    secret_key: str = DEV_SECRET_KEY
    instance_path: Path = DEFAULT_INSTANCE
    database_url: str = ""
    redis_url: str | None = None
    rabbitmq_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "App <no-reply@localhost>"
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout: int = 10
    db_echo: bool = False
    redis_key_prefix: str = "app"
    queue_prefix: str = "app"
    registration_enabled: bool = True
    password_hash_iterations: int = 600_000
    token_ttl_seconds: int = 24 * 3600
    refresh_ttl_seconds: int = 7 * 24 * 3600  # a refresh cookie unused this long expires
    refresh_max_seconds: int = 30 * 24 * 3600  # and no sign-in refreshes past this age
    refresh_grace_seconds: int = 5  # a just-spent cookie used again this soon: a second tab
    session_ttl_seconds: int = 14 * 24 * 3600
    login_rate_limit: str = "10 per minute"
    rate_limits_enabled: bool = True
    cache_default_ttl: int = 3600
    cache_l1_max_entries: int = 5000
    table_cache_ttl: int | None = None  # seconds a table region is kept; 0: render every view
    table_cache_mb: int = 24  # memory of the regions one process keeps (most recently used)
    metrics_enabled: bool = True
    metrics_token: str | None = None  # when set, /metrics wants "Authorization: Bearer <it>"
    log_level: str = "INFO"
    log_json: bool = True
    preferred_url_scheme: Literal["http", "https"] = "http"
    port: int = 5000  # where `make run` / `flask run` serves in development
    public_url: str = ""  # where users reach the app; "" in development: http://127.0.0.1:<port>
    trusted_proxies: int = 0
    drain_flag_file: str | None = None  # set by gunicorn.conf.py: present while draining
    jobs_mode: JobsMode | None = None  # None: broker with RabbitMQ and Redis, else thread
    webhook_allow_http: bool | None = None  # None: only outside production
    webhook_allowed_networks: str = ""  # CIDRs private webhook targets may be in
    currency: str = "usd"  # what the shop charges in (ISO 4217, lower case)
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None  # None: Stripe's own; localstripe in development
    stripe_js_url: str = "https://js.stripe.com/v3/"
    stripe_publishable_key: str | None = None  # None: derived from the API key's mode
    stripe_webhook_secret: str | None = None
    paypal_client_id: str | None = None
    paypal_client_secret: str | None = None
    paypal_api_base: str | None = None  # None: PayPal's sandbox
    payment_timeout: float = 10.0  # seconds a provider call may take before its outcome is unknown
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database_url:
            db_file = self.instance_path / "app.sqlite3"
            object.__setattr__(self, "database_url", f"sqlite:///{db_file}")
        object.__setattr__(self, "database_url", normalize_database_url(self.database_url))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from environment variables (standard platform names)."""
        e = os.environ if env is None else env
        app_env = e.get("APP_ENV", "development").strip().lower()
        if app_env not in ("development", "production", "testing"):
            raise SettingsError(
                f"APP_ENV must be development, production or testing, not {app_env!r}"
            )
        instance = Path(e.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
        settings = cls(
            env=app_env,  # type: ignore[arg-type]
            secret_key=e.get("SECRET_KEY", "") or DEV_SECRET_KEY,
            instance_path=instance,
            database_url=e.get("DATABASE_URL", ""),
            redis_url=_optional(e, "REDIS_URL"),
            rabbitmq_url=_optional(e, "RABBITMQ_URL"),
            smtp_url=_optional(e, "SMTP_URL"),
            mail_from=e.get("MAIL_FROM") or cls.mail_from,
            db_pool_size=_int(e, "DB_POOL_SIZE", cls.db_pool_size),
            db_max_overflow=_int(e, "DB_MAX_OVERFLOW", cls.db_max_overflow),
            db_pool_timeout=_int(e, "DB_POOL_TIMEOUT", cls.db_pool_timeout),
            db_echo=_bool(e.get("DB_ECHO"), False),
            redis_key_prefix=e.get("REDIS_KEY_PREFIX") or cls.redis_key_prefix,
            queue_prefix=e.get("QUEUE_PREFIX") or cls.queue_prefix,
            registration_enabled=_bool(e.get("REGISTRATION_ENABLED"), True),
            password_hash_iterations=_int(e, "PASSWORD_HASH_ITERATIONS", 600_000),
            token_ttl_seconds=_int(e, "TOKEN_TTL_SECONDS", 24 * 3600),
            refresh_ttl_seconds=_int(e, "REFRESH_TTL_SECONDS", cls.refresh_ttl_seconds),
            refresh_max_seconds=_int(e, "REFRESH_MAX_SECONDS", cls.refresh_max_seconds),
            refresh_grace_seconds=_int(e, "REFRESH_GRACE_SECONDS", cls.refresh_grace_seconds),
            session_ttl_seconds=_int(e, "SESSION_TTL_SECONDS", 14 * 24 * 3600),
            login_rate_limit=e.get("LOGIN_RATE_LIMIT") or cls.login_rate_limit,
            rate_limits_enabled=_bool(e.get("RATE_LIMITS_ENABLED"), True),
            cache_default_ttl=_int(e, "CACHE_DEFAULT_TTL", 3600),
            cache_l1_max_entries=_int(e, "CACHE_L1_MAX_ENTRIES", cls.cache_l1_max_entries),
            table_cache_ttl=_int(e, "TABLE_CACHE_TTL", 0) if e.get("TABLE_CACHE_TTL") else None,
            table_cache_mb=_int(e, "TABLE_CACHE_MB", cls.table_cache_mb),
            metrics_enabled=_bool(e.get("METRICS_ENABLED"), True),
            metrics_token=e.get("METRICS_TOKEN") or None,
            log_level=(e.get("LOG_LEVEL") or "INFO").upper(),
            log_json=_bool(e.get("LOG_JSON"), True),
            preferred_url_scheme="https" if _bool(e.get("HTTPS"), False) else "http",
            trusted_proxies=_int(e, "TRUSTED_PROXIES", 0),
            drain_flag_file=_optional(e, "DRAIN_FLAG_FILE"),
            jobs_mode=_jobs_mode(e.get("JOBS_MODE")),
            webhook_allow_http=_bool(e.get("WEBHOOK_ALLOW_HTTP"), True)
            if e.get("WEBHOOK_ALLOW_HTTP")
            else None,
            webhook_allowed_networks=e.get("WEBHOOK_ALLOWED_NETWORKS", ""),
            port=_int(e, "PORT", cls.port),
            currency=(e.get("CURRENCY") or cls.currency).strip().lower(),
            stripe_api_key=_optional(e, "STRIPE_API_KEY"),
            stripe_api_base=_optional(e, "STRIPE_API_BASE"),
            stripe_js_url=_optional(e, "STRIPE_JS_URL") or cls.stripe_js_url,
            stripe_publishable_key=_optional(e, "STRIPE_PUBLISHABLE_KEY"),
            stripe_webhook_secret=_optional(e, "STRIPE_WEBHOOK_SECRET"),
            paypal_client_id=_optional(e, "PAYPAL_CLIENT_ID"),
            paypal_client_secret=_optional(e, "PAYPAL_CLIENT_SECRET"),
            paypal_api_base=_optional(e, "PAYPAL_API_BASE"),
            payment_timeout=float(_int(e, "PAYMENT_TIMEOUT_SECONDS", 10)),
            public_url=(e.get("PUBLIC_URL") or "").strip().rstrip("/"),
        )
        settings.check()
        return settings

    @property
    def webhook_http_allowed(self) -> bool:
        """Plain http webhook URLs: WEBHOOK_ALLOW_HTTP, by default only outside production."""
        if self.webhook_allow_http is not None:
            return self.webhook_allow_http
        return self.env != "production"

    def webhook_rules(self) -> Rules:
        """Where webhook URLs may point, at registration and at each delivery."""
        return Rules(
            allow_http=self.webhook_http_allowed,
            allowed=parse_networks(self.webhook_allowed_networks),
        )

    def check(self) -> None:
        """Refuse configurations that are unsafe in production."""
        try:
            parse_networks(self.webhook_allowed_networks)
        except ValueError as exc:
            raise SettingsError(f"WEBHOOK_ALLOWED_NETWORKS is not a list of CIDRs: {exc}") from exc
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise SettingsError(f"CURRENCY must be a three-letter code, not {self.currency!r}")
        if self.env != "production":
            return
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            raise SettingsError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production "
                "(APP_ENV=production), e.g. "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        if not self.public_url:
            raise SettingsError(
                "PUBLIC_URL must be set in production to the address users open "
                "(e.g. https://app.example.com): password-reset links are built from it"
            )

    @property
    def table_cache_seconds(self) -> int:
        """TABLE_CACHE_TTL, or by default 60 s with Redis and 0 without: without Redis no
        worker hears of another's writes, and each would show its own stale copy."""
        if self.table_cache_ttl is not None:
            return self.table_cache_ttl
        return 60 if self.redis_url else 0

    @property
    def jobs(self) -> JobsMode:
        """How outbox messages run: through RabbitMQ and RQ workers when both are configured
        ("broker"), else on a thread of each process ("thread"); tests drain by hand."""
        if self.jobs_mode is not None:
            return self.jobs_mode
        return "broker" if self.rabbitmq_url and self.redis_url else "thread"

    @property
    def external_base(self) -> str:
        """Where users reach the app; links in emails start here, never at the Host header.

        Without PUBLIC_URL (development only) it is the address `make run` serves on, so a
        reset link opened from the mail viewer reaches the same server.
        """
        return self.public_url.rstrip("/") or f"http://127.0.0.1:{self.port}"

    @property
    def payments_configured(self) -> bool:
        """Whether any provider can take a payment (Stripe with a key, or PayPal)."""
        return bool(self.stripe_api_key or (self.paypal_client_id and self.paypal_client_secret))

    @property
    def uploads_path(self) -> Path:
        """Where web uploads (user imports) and their rejects files are kept."""
        return self.instance_path / "uploads"


def get_settings(app: Flask | None = None) -> Settings:
    """The typed settings of the current (or given) app."""
    settings: Settings = (app or current_app).extensions["settings"]
    return settings
