"""Readiness checks for each backing service; each answers quickly and never raises."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

State = Literal["up", "down", "disabled"]


@dataclass(frozen=True)
class CheckResult:
    """One service's state and how long the check took."""

    state: State
    latency_ms: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"state": self.state}
        if self.latency_ms is not None:
            out["latency_ms"] = round(self.latency_ms, 1)
        if self.error:
            out["error"] = self.error
        return out


def _timed(name: str, probe: object) -> CheckResult:
    start = time.perf_counter()
    try:
        probe()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - a readiness probe reports, it never raises
        log.warning("readiness: %s is down: %s", name, exc)
        return CheckResult("down", (time.perf_counter() - start) * 1000, type(exc).__name__)
    return CheckResult("up", (time.perf_counter() - start) * 1000)


def check_database(*engines: Engine) -> CheckResult:
    """Run SELECT 1 on a pooled connection of each engine (the write and the read pool)."""

    def probe() -> None:
        for engine in engines:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

    return _timed("database", probe)


def check_redis(url: str | None) -> CheckResult:
    """PING Redis with a short timeout."""
    if not url:
        return CheckResult("disabled")
    import redis

    def probe() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()

    return _timed("redis", probe)


def check_rabbitmq(url: str | None) -> CheckResult:
    """Open and close an AMQP connection with a short timeout."""
    if not url:
        return CheckResult("disabled")
    import pika

    def probe() -> None:
        params = pika.URLParameters(url)
        params.socket_timeout = 2
        params.blocked_connection_timeout = 2
        params.connection_attempts = 1
        connection = pika.BlockingConnection(params)
        connection.close()

    return _timed("rabbitmq", probe)
