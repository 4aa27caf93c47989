"""Circuit breakers: while a backing service is down or hanging, calls fail in milliseconds.

Without one, every request waits out its own timeout against a dead Redis or
database, and a few requests hold every worker. A breaker opens after
`threshold` consecutive failures; while open, calls raise ServiceDown at once
(the edge answers 503 with Retry-After). After `cooldown` seconds one call is
let through as a trial (half-open): success closes the breaker, failure opens
it for another cooldown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from app.core.metrics import CIRCUIT_OPENED, CIRCUIT_STATE

State = Literal["closed", "open", "half-open"]
_STATE_VALUE = {"closed": 0, "half-open": 1, "open": 2}


class ServiceDown(Exception):
    """A backing service is unreachable or too slow; try again after `retry_after` seconds."""

    def __init__(self, service: str, retry_after: int = 5, *, detail: str = "") -> None:
        super().__init__(f"{service} is unavailable{': ' + detail if detail else ''}")
        self.service = service
        self.retry_after = retry_after


class CircuitBreaker:
    """One service's breaker; thread-safe, shared by every request of a process."""

    def __init__(
        self,
        service: str,
        *,
        threshold: int = 2,
        cooldown: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._set_gauge("closed")

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def before_call(self) -> None:
        """Raise ServiceDown while open; let one trial call through once the cooldown passed."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._trial:
                self._trial = True
                return
            waited = self._clock() - (self._opened_at or 0.0)
            retry = max(1, round(self.cooldown - waited + 0.5))
        raise ServiceDown(self.service, retry, detail="circuit open")

    def succeeded(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._failures, self._opened_at, self._trial = 0, None, False
        if was_open:
            self._set_gauge("closed")

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial = False
            opens = self._failures >= self.threshold
            if opens:
                newly = self._opened_at is None
                self._opened_at = self._clock()
        if opens:
            self._set_gauge("open")
            if newly:
                CIRCUIT_OPENED.labels(service=self.service).inc()

    @contextmanager
    def guard(self, errors: tuple[type[BaseException], ...]) -> Iterator[None]:
        """Run a call through the breaker; `errors` count as the service failing."""
        self.before_call()
        try:
            yield
        except errors as exc:
            self.failed()
            raise ServiceDown(self.service, max(1, round(self.cooldown))) from exc
        self.succeeded()

    def _set_gauge(self, state: State) -> None:
        CIRCUIT_STATE.labels(service=self.service).set(_STATE_VALUE[state])
