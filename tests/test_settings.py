"""Settings read from the environment, and the refusals that keep production safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.settings import DEV_SECRET_KEY, Settings, SettingsError, normalize_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("postgresql+psycopg2://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_url_forms_all_drive_psycopg3(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_unknown_database_scheme_is_refused_with_a_message() -> None:
    with pytest.raises(SettingsError, match="mysql"):
        normalize_database_url("mysql://u@db/app")


def test_from_env_reads_standard_names(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u@db/app",
            "REDIS_URL": "redis://r:6379/1",
            "RABBITMQ_URL": "amqp://guest:guest@mq:5672/",
            "SMTP_URL": "smtp://mail:25",
            "SECRET_KEY": "s" * 40,
            "INSTANCE_PATH": str(tmp_path),
            "PASSWORD_HASH_ITERATIONS": "700000",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db/app"
    assert settings.redis_url == "redis://r:6379/1"
    assert settings.rabbitmq_url == "amqp://guest:guest@mq:5672/"
    assert settings.smtp_url == "smtp://mail:25"
    assert settings.password_hash_iterations == 700_000
    assert settings.instance_path == tmp_path


def test_embedded_default_is_sqlite_under_instance(tmp_path: Path) -> None:
    settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'app.sqlite3'}"
    assert settings.redis_url is None and settings.rabbitmq_url is None


def test_bad_integer_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="DB_POOL_SIZE"):
        Settings.from_env({"DB_POOL_SIZE": "many"})


@pytest.mark.parametrize("secret", ["", DEV_SECRET_KEY, "short"])
def test_production_refuses_default_or_weak_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env({"APP_ENV": "production", "SECRET_KEY": secret})


def test_production_create_app_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(env="production", instance_path=tmp_path)
    with pytest.raises(SettingsError, match="SECRET_KEY must be set"):
        create_app(settings)


def test_production_with_a_real_secret_starts(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        secret_key="k" * 64,
        instance_path=tmp_path,
        database_url=f"sqlite:///{tmp_path}/p.sqlite3",
        public_url="https://app.example.com",
    )
    assert create_app(settings).config["SECRET_KEY"] == "k" * 64


def test_production_needs_a_public_url_for_links(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        Settings(env="production", secret_key="k" * 64, instance_path=tmp_path).check()


def test_tables_are_cached_by_default_only_where_workers_hear_each_others_writes(
    tmp_path: Path,
) -> None:
    base = {"INSTANCE_PATH": str(tmp_path)}
    assert Settings.from_env(base).table_cache_seconds == 0  # no Redis: no invalidations
    with_redis = {**base, "REDIS_URL": "redis://r:6379/0"}
    assert Settings.from_env(with_redis).table_cache_seconds == 60
    assert Settings.from_env({**with_redis, "TABLE_CACHE_TTL": "0"}).table_cache_seconds == 0
    assert Settings.from_env({**base, "TABLE_CACHE_TTL": "30"}).table_cache_seconds == 30
    with pytest.raises(SettingsError, match="TABLE_CACHE_TTL"):
        Settings.from_env({**base, "TABLE_CACHE_TTL": "soon"})


def test_links_in_emails_follow_the_port_in_development_and_public_url_when_set(
    tmp_path: Path,
) -> None:
    base = {"INSTANCE_PATH": str(tmp_path)}
    assert Settings.from_env(base).external_base == "http://127.0.0.1:5000"
    assert Settings.from_env({**base, "PORT": "5123"}).external_base == "http://127.0.0.1:5123"
    given = Settings.from_env({**base, "PORT": "5123", "PUBLIC_URL": "https://app.example.com/"})
    assert given.external_base == "https://app.example.com"
