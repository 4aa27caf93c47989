"""The embedded runner: outbox messages run in this process, after the commit that made them.

With no RabbitMQ and Redis (`make run`), the same outbox rows and the same tasks
run here instead of in a worker: a thread per process wakes when a transaction
that added a message commits (and every few seconds, for retries), takes the due
messages and runs them, retrying on the queue's schedule. Tests use the manual
mode and call `drain()`.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from flask import Flask, current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.extensions import db
from app.jobs.dispatch import run
from app.jobs.queues import RETRY_DELAYS, max_attempts, retry_delays
from app.services import outbox
from app.services.outbox import OUTBOX_ADDED, Message

log = logging.getLogger(__name__)

Mode = Literal["thread", "manual"]
EXTENSION_KEY = "jobs_runner"
POLL_SECONDS = 2.0
BATCH = 20


class EmbeddedRunner:
    """Runs this app's outbox in-process (see the module docstring)."""

    def __init__(self, app: Flask, mode: Mode) -> None:
        self.app = app
        self.mode = mode
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        """A commit added messages: run them soon (the thread starts on first use)."""
        if self.mode == "manual":
            return
        self._start()
        self._wake.set()

    def drain(self) -> int:
        """Run every due message now, in this thread; returns how many ran."""
        ran = 0
        while True:
            with db.background(self.app), db.transaction() as session:
                batch = outbox.claim_unpublished(session, BATCH)
                outbox.mark_published(session, [m.id for m in batch])
            if not batch:
                return ran
            for message in batch:
                self._run(message)
            ran += len(batch)

    def _run(self, message: Message) -> None:
        with db.background(self.app):
            attempts = min(message.attempts, len(RETRY_DELAYS[message.queue]))
            last = attempts + 1 >= max_attempts(message.queue)
            delay = None if last else retry_delays(message.queue)[attempts]
            try:
                run(message, retry_in=delay)
            except Exception as exc:  # noqa: BLE001 - a task failure is recorded, not raised
                log.warning("message %s (%s) failed: %s", message.id, message.kind, exc)
                with db.transaction() as session:
                    if delay is None:
                        outbox.give_up(session, message.id, repr(exc))
                    else:
                        outbox.reschedule(session, message.id, repr(exc), delay)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # a fork leaves no thread
                self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # the runner must outlive a failing database
                log.exception("the embedded outbox runner failed; retrying")


def _after_commit(session: Session) -> None:
    if session.info.pop(OUTBOX_ADDED, False) and has_app_context():
        runner: EmbeddedRunner | None = current_app.extensions.get(EXTENSION_KEY)
        if runner is not None:
            runner.wake()


def _after_rollback(session: Session) -> None:
    session.info.pop(OUTBOX_ADDED, None)


def init_runner(app: Flask, mode: Mode) -> EmbeddedRunner:
    """Attach a runner to the app and wake it after commits that add messages."""
    runner = app.extensions[EXTENSION_KEY] = EmbeddedRunner(app, mode)
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)
    return runner


def get_runner(app: Flask) -> EmbeddedRunner:
    """The app's embedded runner (tests drain it)."""
    runner: EmbeddedRunner = app.extensions[EXTENSION_KEY]
    return runner
