"""What both fault rounds need: a private database, queue prefix and SMTP sink on the real
services, the app's processes (`flask bridge`, `flask worker`) started and killed by
pid, sign-ups that each owe one welcome email, and a count of what arrived.

Nothing shared is stopped: the database, queues, exchanges and Redis keys are this
round's own (a per-round name) and are removed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.core import migrations  # noqa: E402
from app.extensions import db  # noqa: E402
from app.jobs.bridge import job_id  # noqa: E402
from app.jobs.broker import connect  # noqa: E402
from app.jobs.queues import QUEUE_NAMES, Names  # noqa: E402
from app.jobs.worker import queues  # noqa: E402
from app.models import Delivery, OutboxMessage  # noqa: E402
from app.services import accounts  # noqa: E402
from app.settings import Settings, normalize_database_url  # noqa: E402

HASH_ITERATIONS = 1000  # sign-ups here measure the path, not password hashing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An SMTP server keeping (recipient, Message-ID) of every email it accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        with self._lock:
            self.received.append((str(message["To"]), str(message["Message-ID"])))
        return "250 OK"

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def by_recipient(self) -> dict[str, list[str]]:
        """Each recipient's Message-IDs, one per email received."""
        found: dict[str, list[str]] = defaultdict(list)
        with self._lock:
            for to, message_id in self.received:
                found[to].append(message_id)
        return found


@dataclass
class Round:
    """One round's app, sink and processes on the services the environment names."""

    settings: Settings
    app: Flask
    sink: Sink
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = field(default_factory=lambda: Path("/tmp"))

    @property
    def names(self) -> Names:
        return Names(self.settings.queue_prefix)

    def env(self) -> dict[str, str]:
        s = self.settings
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        return {
            **inherited,
            "APP_ENV": "testing",
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url or "",
            "RABBITMQ_URL": s.rabbitmq_url or "",
            "SMTP_URL": s.smtp_url or "",
            "QUEUE_PREFIX": s.queue_prefix,
            "REDIS_KEY_PREFIX": s.redis_key_prefix,
            "PUBLIC_URL": s.public_url,
            "INSTANCE_PATH": str(s.instance_path),
            "JOBS_MODE": "broker",
            "LOG_JSON": "0",
            "LOG_LEVEL": "WARNING",
        }

    def start(self, role: str, *args: str) -> None:
        """Start (or restart) a process of the app under a role name."""
        log = (self.logs / f"{role}.log").open("ab")
        self.processes[role] = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, role: str) -> None:
        """kill -9 the role's process group: the process (and a worker's scheduler). A
        work-horse has a group of its own, so the job in hand is finished, as after a
        real kill -9 of a worker's pid."""
        process = self.processes[role]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        """Kill every process this round started, and what they forked."""
        sessions = {p.pid for p in self.processes.values()}
        for role in list(self.processes):
            self.kill(role)
        for pid in _processes_in_sessions(sessions):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def deliveries_by_state(self) -> Counter[str]:
        with self.app.app_context():
            rows = db.session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return Counter({state: int(n) for state, n in rows})

    def dead_messages(self) -> int:
        with self.app.app_context():
            return int(
                db.session.scalar(select(func.count()).where(OutboxMessage.dead_at.isnot(None)))
                or 0
            )

    def where_undelivered(self) -> list[str]:
        """For each delivery not sent: where its message is (outbox, broker, RQ)."""
        emails = dict(zip(QUEUE_NAMES, queues(self.app), strict=True))["emails"]
        stranded = set(emails.intermediate_queue.get_job_ids())
        found = []
        with self.app.app_context():
            rows = db.session.execute(
                select(Delivery.id, Delivery.state, Delivery.attempts, OutboxMessage)
                .join(OutboxMessage, OutboxMessage.id == Delivery.message_id)
                .where(Delivery.state != "sent")
            )
            for delivery_id, state, attempts, message in rows:
                rq_id = job_id(self.names, str(message.id))
                job = emails.fetch_job(rq_id)
                where = "not in RQ" if job is None else f"RQ {job.get_status()}"
                where += ", stranded in RQ's intermediate queue" if rq_id in stranded else ""
                published = "published" if message.published_at else "NOT published"
                found.append(
                    f"delivery {delivery_id} ({state}, {attempts} attempts): message "
                    f"{message.id} {published}; {where}"
                )
        return found

    def broker_ready(self, queue: str = "emails") -> int:
        connection = connect(self.settings.rabbitmq_url or "")
        try:
            declared = connection.channel().queue_declare(self.names.queue(queue), passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()


def _processes_in_sessions(sessions: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) in sessions:  # the session id
                found.append(int(entry.name))
    return found


def sign_up(app: Flask, email: str) -> None:
    """A self-service sign-up: the account, its welcome email's ledger entry and message."""
    with app.app_context(), db.transaction() as session:
        accounts.register(
            session,
            email=email,
            name=email.split("@")[0],
            password="a long enough password",
            confirm="a long enough password",
            iterations=HASH_ITERATIONS,
            ip=None,
        )


def emails_per_event(sink: Sink, recipients: list[str]) -> tuple[Counter[int], int, int]:
    """How many events got 0, 1, 2... emails; duplicated events; those sharing a Message-ID."""
    received = sink.by_recipient()
    per_event = Counter(len(received.get(r, [])) for r in recipients)
    duplicated = [received[r] for r in recipients if len(received.get(r, [])) > 1]
    same_id = sum(1 for ids in duplicated if len(set(ids)) == 1)
    return per_event, len(duplicated), same_id


@contextmanager
def services_round(tag: str, *, rabbitmq_url: str | None = None) -> Iterator[Round]:
    """A database, queue prefix, Redis prefix and SMTP sink of the round's own, removed after."""
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        if not os.environ.get(name):
            sys.exit(f"make faults needs {name} (PostgreSQL, Redis, RabbitMQ); see README")
    base = normalize_database_url(os.environ["DATABASE_URL"])
    if not base.startswith("postgresql"):
        sys.exit("make faults needs DATABASE_URL to name PostgreSQL")
    run = uuid.uuid4().hex[:8]
    database = f"faults_{tag}_{run}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = urlunsplit(urlsplit(base)._replace(path=f"/{database}"))
    sink = Sink()
    sink._controller.start()
    workdir = Path(f"/tmp/ledgerly-faults-{tag}-{run}")
    workdir.mkdir(parents=True)
    settings = Settings(
        env="testing",
        database_url=url,
        redis_url=os.environ["REDIS_URL"],
        rabbitmq_url=rabbitmq_url or os.environ["RABBITMQ_URL"],
        smtp_url=f"smtp://127.0.0.1:{sink.port}",
        queue_prefix=f"faults-{tag}-{run}",
        redis_key_prefix=f"faults-{tag}-{run}",
        instance_path=workdir / "instance",
        public_url="http://localhost",
        jobs_mode="broker",
        log_json=False,
        log_level="WARNING",
        password_hash_iterations=HASH_ITERATIONS,
        metrics_enabled=False,
    )
    found: Round | None = None
    try:
        migrations.upgrade(url)
        found = Round(settings=settings, app=create_app(settings), sink=sink, logs=workdir)
        yield found
    finally:
        if found is not None:
            found.stop_all()
            db.dispose(found.app)
            _drop_queues(found)
        sink._controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _drop_queues(found: Round) -> None:
    import redis

    names = found.names
    try:
        connection = connect(found.settings.rabbitmq_url or "")
        channel = connection.channel()
        for queue in (*(names.queue(q) for q in QUEUE_NAMES), names.dead_queue):
            channel.queue_delete(queue)
        channel.exchange_delete(names.exchange)
        channel.exchange_delete(names.dead_exchange)
        connection.close()
    except Exception as exc:  # the private node of the restart round may be gone already
        print(f"  (queues not removed: {exc})", file=sys.stderr)
    store = redis.Redis.from_url(found.settings.redis_url or "")
    keys = [*store.scan_iter(f"*{names.prefix}*")]
    if keys:
        store.delete(*keys)


def wait_for(check: Any, *, timeout: float, idle: float = 60.0, progress: Any = None) -> bool:
    """Wait until `check()`; give up after `timeout`, or `idle` s without `progress()` moving."""
    started = last_move = time.monotonic()
    last = progress() if progress else None
    while not check():
        now = time.monotonic()
        if progress is not None:
            value = progress()
            if value != last:
                last, last_move = value, now
        if now - started > timeout or now - last_move > idle:
            return False
        time.sleep(0.5)
    return True
