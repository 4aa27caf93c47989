"""A migrated PostgreSQL database of a test module's own, dropped afterwards.

Fault tests run apps (and relays, bridges, workers in other processes) that commit, so
they cannot share the rolled-back test database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, text

from app.core import migrations
from app.settings import normalize_database_url
from tests.conftest import RUN_ID, require


@contextmanager
def own_database(label: str) -> Iterator[str]:
    """Create `test_<label>_<run id>` next to DATABASE_URL, migrate it, yield its URL."""
    base = normalize_database_url(require("DATABASE_URL"))
    name = f"test_{label}_{RUN_ID}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
        migrations.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
