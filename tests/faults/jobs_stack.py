"""The background path of one app on the real services, for the fault tests.

A `JobsStack` is an app on its own PostgreSQL database and its own queue prefix,
plus the relay and bridge as threads of the test and RQ workers as real
`flask --app app worker` processes (they fork work-horses a test can kill). An
app built with `app_with(...)` shares the database and queues but may reach a
service through a FaultProxy. Everything is torn down: threads, processes,
broker queues and exchanges, Redis keys, table rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties
from rq import SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import select, text

from app import create_app
from app.extensions import db
from app.jobs import tasks
from app.jobs.bridge import Bridge
from app.jobs.broker import connect
from app.jobs.queues import QUEUE_NAMES, Names
from app.jobs.relay import Relay
from app.jobs.worker import queues
from app.models import Delivery, OutboxMessage
from app.models.base import Base
from app.settings import Settings
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.05)


def sign_up(client: FlaskClient, email: str) -> float:
    """Sign up through the real form; returns how long the request took."""
    form = {"email": email, "name": email.split("@")[0], "password": PASSWORD}
    started = time.perf_counter()
    response = client.post("/register", data={**form, "confirm_password": PASSWORD})
    elapsed = time.perf_counter() - started
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return elapsed


class RecordingBridge(Bridge):
    """The real bridge, noting every delivery it is handed (message id, redelivered)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self.seen: list[tuple[str, bool]] = []

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        self.seen.append((str(props.message_id), bool(method.redelivered)))
        super()._on_message(channel, method, props, body)


@dataclass
class JobsStack:
    settings: Settings
    app: Flask
    _threads: list[tuple[threading.Event, threading.Thread]] = field(default_factory=list)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _apps: list[Flask] = field(default_factory=list)

    @property
    def names(self) -> Names:
        return Names(self.settings.queue_prefix)

    def app_with(self, **overrides: Any) -> Flask:
        """Another instance on the same database and queues (e.g. through a proxy)."""
        app = create_app(replace(self.settings, **overrides))
        app.config["WTF_CSRF_ENABLED"] = False
        self._apps.append(app)
        return app

    # --- processes and threads -----------------------------------------------------

    def run_in_thread(self, target: Callable[[threading.Event], None]) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), daemon=True)
        thread.start()
        self._threads.append((stop, thread))
        return stop

    def relay(self, app: Flask | None = None) -> threading.Event:
        return self.run_in_thread(Relay(app or self.app).run)

    def bridge(self, bridge: Bridge | None = None) -> threading.Event:
        return self.run_in_thread((bridge or Bridge(self.app)).run)

    def env(self) -> dict[str, str]:
        """The environment a process needs to build this stack's app."""
        s = self.settings
        values = {
            "APP_ENV": "testing",
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url or "",
            "RABBITMQ_URL": s.rabbitmq_url or "",
            "SMTP_URL": s.smtp_url or "",
            "QUEUE_PREFIX": s.queue_prefix,
            "REDIS_KEY_PREFIX": s.redis_key_prefix,
            "SECRET_KEY": s.secret_key,
            "PUBLIC_URL": s.public_url,
            "INSTANCE_PATH": str(s.instance_path),
            "JOBS_MODE": "broker",
            "LOG_JSON": "0",
            "LOG_LEVEL": "WARNING",
        }
        return {**os.environ, **values}

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # the worker's scheduler goes down with it
        )
        self._processes.append(process)
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        """A real `flask worker` process (it forks a work-horse per job)."""
        return self.spawn("-m", "flask", "--app", "app", "worker")

    def work_here(self, done: Callable[[], bool], timeout: float) -> None:
        """Run jobs in this process (RQ's SimpleWorker: no fork per job) until `done()`."""
        tasks.use_app(self.app)
        serving = queues(self.app)
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs run here for {timeout:.0f}s did not finish")
            SimpleWorker(serving, connection=serving[0].connection).work(burst=True)
            time.sleep(0.1)

    def crash(self, part: str) -> int:
        """Run tests/faults/crash.py's relay or bridge until it kills itself; its status."""
        process = self.spawn("-m", "tests.faults.crash", part)
        return process.wait(timeout=60)

    # --- what there is to see -------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        with self.app.app_context():
            rows = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
            db.session.expunge_all()
            return list(rows)

    def outbox(self) -> list[OutboxMessage]:
        with self.app.app_context():
            rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
            db.session.expunge_all()
            return list(rows)

    def rq_job_ids(self) -> list[str]:
        """Every job waiting in this stack's RQ queues."""
        return [job_id for q in queues(self.app) for job_id in q.job_ids]

    def failed_job_ids(self, queue: str = "emails") -> list[str]:
        serving = dict(zip(QUEUE_NAMES, queues(self.app), strict=True))
        return FailedJobRegistry(queue=serving[queue]).get_job_ids()

    def broker_ready(self, queue: str) -> int:
        """Messages ready (not handed to a consumer) in one of this stack's broker queues."""
        connection = connect(self.settings.rabbitmq_url or "")
        try:
            channel = connection.channel()
            declared = channel.queue_declare(queue, passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()

    # --- teardown ---------------------------------------------------------------------

    def close(self, rabbitmq_url: str, redis_url: str) -> None:
        for stop, _ in self._threads:
            stop.set()
        for _, thread in self._threads:
            thread.join(timeout=10)
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # its work is checked already
                process.wait()
        connection = connect(rabbitmq_url)
        channel = connection.channel()
        names = self.names
        for name in (*(names.queue(q) for q in QUEUE_NAMES), names.dead_queue):
            channel.queue_delete(name)
        channel.exchange_delete(names.exchange)
        channel.exchange_delete(names.dead_exchange)
        connection.close()
        store = redis.Redis.from_url(redis_url)
        keys = [*store.scan_iter(f"*{self.settings.queue_prefix}*")]
        if keys:
            store.delete(*keys)
        for app in self._apps:
            db.dispose(app)
        with self.app.app_context(), db.transaction() as session:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.dispose(self.app)


def horse_of(worker_pid: int, timeout: float = 10.0) -> int:
    """The work-horse a worker forked (RQ puts it in a process group of its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            ppid, pgrp = int(fields[1]), int(fields[2])
            if ppid == worker_pid and pgrp == int(entry.name):
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"worker {worker_pid} has no work-horse")


def iter_delivery_ids(stack: JobsStack) -> Iterator[tuple[int, int]]:
    """(delivery id, outbox message id) of every delivery."""
    for d in stack.deliveries():
        assert d.message_id is not None
        yield d.id, d.message_id
