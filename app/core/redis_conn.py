"""The app's Redis client (None in the embedded default), stored as an extension.

Every call has a timeout suited to a web request (REDIS_TIMEOUT, 200 ms) and goes
through a circuit breaker, so a Redis that is down or hanging costs a request
milliseconds, never a blocked worker: callers get ServiceDown and decide whether
to degrade (rate limits, the cache) or answer 503 (sessions, tokens).
"""

from __future__ import annotations

from typing import Any, cast

import redis
from flask import Flask, current_app
from redis.client import Pipeline

from app.core.breaker import CircuitBreaker

# Unreachable, too slow, or refusing writes (maxmemory reached, a read-only replica):
# all mean "cannot keep a session or token now", so callers answer 503, never 500.
DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)
REDIS_TIMEOUT = 0.2  # seconds to connect, and to wait for each answer


class GuardedPipeline(Pipeline):
    """A pipeline whose execute goes through the client's breaker."""

    breaker: CircuitBreaker

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with self.breaker.guard(DOWN):
            return super().execute(raise_on_error)


class GuardedRedis(redis.Redis):
    """redis.Redis whose commands and pipelines fail fast while the breaker is open."""

    breaker: CircuitBreaker

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with self.breaker.guard(DOWN):
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def read(self, key: str) -> bytes | None:
        """GET `key` on a pooled connection, without the client's command machinery.

        The session read every signed-in page makes: the client's path around the round
        trip (retry wrapper, event hooks, per-command telemetry lookups) costs a page
        about 35 µs of CPU. A connection found dropped (a Redis restart) is replaced and
        the read sent once more, as the client's own retry would; a timeout is not
        retried (a hanging Redis must cost milliseconds). Failures count against the
        breaker like any command's.
        """
        with self.breaker.guard(DOWN):
            pool = self.connection_pool
            retried = False
            while True:
                connection: Any = pool.get_connection()
                try:
                    connection.send_command("GET", key)
                    found: bytes | None = connection.read_response()
                    return found
                except redis.exceptions.ConnectionError:
                    connection.disconnect()
                    if retried:
                        raise
                    retried = True
                except BaseException:
                    connection.disconnect()  # an answer may be left unread on it
                    raise
                finally:
                    pool.release(connection)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        pipe = GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.breaker = self.breaker
        return pipe


def connect(url: str, *, timeout: float = REDIS_TIMEOUT, breaker: CircuitBreaker) -> GuardedRedis:
    """A pooled, guarded client for `url`."""
    client = cast(
        GuardedRedis,
        GuardedRedis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=30,
            retry_on_timeout=False,
        ),
    )
    client.breaker = breaker
    return client


def init_redis(app: Flask, url: str | None) -> GuardedRedis | None:
    """Create one guarded client per app, or None when Redis is not configured."""
    client = connect(url, breaker=CircuitBreaker("redis")) if url else None
    app.extensions["redis"] = client
    return client


def get_redis(app: Flask | None = None) -> GuardedRedis | None:
    """The current app's Redis client, if configured."""
    client: GuardedRedis | None = (app or current_app).extensions.get("redis")
    return client
