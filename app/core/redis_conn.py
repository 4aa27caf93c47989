"""The app's Redis client (None in the embedded default), stored as an extension."""

from __future__ import annotations

import redis
from flask import Flask, current_app


def init_redis(app: Flask, url: str | None) -> redis.Redis | None:
    """Create one pooled client per app, or None when Redis is not configured."""
    client = (
        redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )
        if url
        else None
    )
    app.extensions["redis"] = client
    return client


def get_redis(app: Flask | None = None) -> redis.Redis | None:
    """The current app's Redis client, if configured."""
    client: redis.Redis | None = (app or current_app).extensions.get("redis")
    return client
