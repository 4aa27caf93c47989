"""Jinja globals and filters shared by every template."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app, request, url_for

from app.utils.memo import remembered

MAX_REMEMBERED_PATHS = 1000
_PATHS = "remembered_paths"  # app.extensions key: {(endpoint, script root): path}


@lru_cache(maxsize=128)
def _fingerprint(path: Path, mtime: float) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def register_template_helpers(app: Flask) -> None:
    """Add `asset_url`, a remembering `url_for`, money and date filters."""
    static_root = Path(app.static_folder or "static")
    app.extensions[_PATHS] = {}

    def remembered_url_for(endpoint: str, **values: Any) -> str:
        """url_for, remembered (path_for) for links without arguments."""
        if values or endpoint.startswith("."):
            return url_for(endpoint, **values)
        return path_for(endpoint)

    def hashed_url(filename: str, _mount: str) -> str:
        path = static_root / filename
        version = _fingerprint(path, path.stat().st_mtime) if path.exists() else "0"
        return url_for("static", filename=filename, v=version)

    if not app.debug:  # assets do not change under a running server: hash each once
        hashed_url = lru_cache(maxsize=64)(hashed_url)

    def asset_url(filename: str) -> str:
        """A static URL with a content hash, so browsers can cache assets for long (one per
        file and mount point)."""
        return hashed_url(filename, request.script_root)

    def date(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return ""
        if fmt == "%Y-%m-%d %H:%M":  # the common case, several times faster than strftime
            return minute(value)
        return value.strftime(fmt)

    def readable(value: Any) -> str:
        """A value of an audit row in words: lists joined, flags as yes/no, maps as k: v."""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list | tuple):
            return ", ".join(readable(v) for v in value) or "none"
        if isinstance(value, dict):
            return "; ".join(f"{k}: {readable(v)}" for k, v in value.items()) or "none"
        return "" if value is None else str(value)

    vendor = json.loads((static_root / "vendor/htmx/VERSION.json").read_text())
    app.jinja_env.globals["htmx_vendor"] = vendor
    app.jinja_env.globals["asset_url"] = asset_url
    app.jinja_env.globals["url_for"] = remembered_url_for
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["minor"] = minor_money
    app.jinja_env.filters["date"] = date
    app.jinja_env.filters["readable"] = readable
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True


def path_for(endpoint: str) -> str:
    """`url_for(endpoint)` for an endpoint without arguments, built once per app and mount
    point: a page's nav, footer and table draw a dozen such links, and each build walks
    werkzeug's URL map (about 40 µs)."""
    if endpoint.startswith("."):
        raise ValueError(f"path_for needs a full endpoint name, not {endpoint!r}")
    key = (endpoint, request.script_root)
    paths: dict[Hashable, str] = current_app.extensions[_PATHS]
    return remembered(paths, key, lambda: url_for(endpoint), MAX_REMEMBERED_PATHS)


def money(value: Decimal | float | None) -> str:
    """$1,234.50 (the `money` filter)."""
    return "" if value is None else f"${value:,.2f}"


def minute(value: datetime | None) -> str:
    """2026-01-31 09:05 (the `date` filter's default format, without strftime's cost)."""
    return "" if value is None else value.isoformat(" ", "minutes")[:16]


def minor_money(amount: int | None, currency: str = "usd") -> str:
    """An amount in minor units as "12.34 USD"."""
    if amount is None:
        return ""
    return f"{Decimal(amount) / 100:,.2f} {currency.upper()}"
