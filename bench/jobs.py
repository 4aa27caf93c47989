"""Speed of the background path: the full path next to bare RQ, latency, and what the outbox
costs a web request.

    .venv/bin/python bench/jobs.py                 # 500 jobs a run, 3 rounds, 2 workers
    .venv/bin/python bench/jobs.py --jobs 2000 --rounds 1 --requests 500

Needs DATABASE_URL (PostgreSQL), REDIS_URL and RABBITMQ_URL. It creates a database, a
queue prefix and Redis keys of its own and removes them at the end.

1. Throughput. The same task (it notes its start time in Redis, nothing else) runs
   through the full path (a commit per event adds an outbox row -> the relay publishes
   it to RabbitMQ with confirms -> the bridge enqueues it in RQ -> a worker runs it)
   and through bare RQ (the same jobs enqueued straight into RQ), on the same two
   forking RQ workers, in the same run. Each figure is jobs/s from the first commit (or
   enqueue) to the last task start. Goal: the full path at least half of bare RQ.
2. Latency at low load: events committed one at a time, 5 a second; commit -> task start
   (p50 under 250 ms, p99 under 1 s).
3. A web request's cost: sign-ups (POST /register, Flask's test client, PostgreSQL and
   Redis) with the outbox handler subscribed (it adds the welcome email's ledger entry and
   outbox row) and without, interleaved; the difference of the medians (goal <= 1 ms).

The relay, the bridge and the workers are forked from this process after the no-op task
is added to the dispatch table, so they all know it. Figures are printed, not asserted;
on a shared machine they move from run to run (say so when quoting them).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import shutil
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from flask import Flask  # noqa: E402
from rq import Retry  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402

from app import create_app  # noqa: E402
from app.core import migrations  # noqa: E402
from app.core.events import EventBus  # noqa: E402
from app.extensions import db  # noqa: E402
from app.jobs import dispatch  # noqa: E402
from app.jobs.bridge import FAILURE_TTL, RESULT_TTL, Bridge, job_id  # noqa: E402
from app.jobs.broker import connect  # noqa: E402
from app.jobs.queues import JOB_TIMEOUTS, QUEUE_NAMES, Names, retry_delays  # noqa: E402
from app.jobs.relay import Relay  # noqa: E402
from app.jobs.worker import queues, work  # noqa: E402
from app.services import outbox  # noqa: E402
from app.services.outbox import Message, OutboxHandler  # noqa: E402
from app.settings import Settings, normalize_database_url  # noqa: E402

KIND = "job.bench"
_BARE_IDS = itertools.count(1_000_000_000)  # ids no outbox row of the run reaches
PASSWORD = "a long enough password"


class Starts:
    """Where the no-op task notes "message id, start time"; read back by the benchmark."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self._client: redis.Redis | None = None

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        return self._client

    def note(self, message: Message, *, retry_in: float | None) -> None:
        self.client().rpush(self.key, f"{message.id} {time.time()}")

    def count(self) -> int:
        return int(self.client().llen(self.key))

    def read(self) -> dict[int, float]:
        entries = self.client().lrange(self.key, 0, -1)
        return {int(a): float(b) for a, b in (e.decode().split() for e in entries)}

    def clear(self) -> None:
        self.client().delete(self.key)


# --- the services of one run ---------------------------------------------------------


@contextmanager
def bench_services(args: argparse.Namespace) -> Iterator[Settings]:
    base = normalize_database_url(os.environ["DATABASE_URL"])
    run = uuid.uuid4().hex[:8]
    name = f"ledgerly_bench_jobs_{run}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    prefix = f"bench-jobs-{run}"
    settings = Settings(
        env="testing",
        database_url=url,
        redis_url=os.environ["REDIS_URL"],
        rabbitmq_url=os.environ["RABBITMQ_URL"],
        queue_prefix=prefix,
        redis_key_prefix=prefix,
        instance_path=Path(f"/tmp/{prefix}"),
        jobs_mode="broker",
        log_json=False,
        log_level="WARNING",
        password_hash_iterations=1000,
        rate_limits_enabled=False,
        metrics_enabled=False,
        public_url="http://localhost",
    )
    try:
        migrations.upgrade(url)
        yield settings
    finally:
        _drop_queues(settings)
        shutil.rmtree(settings.instance_path, ignore_errors=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _drop_queues(settings: Settings) -> None:
    names = Names(settings.queue_prefix)
    connection = connect(settings.rabbitmq_url or "")
    channel = connection.channel()
    for queue in (*(names.queue(q) for q in QUEUE_NAMES), names.dead_queue):
        channel.queue_delete(queue)
    channel.exchange_delete(names.exchange)
    channel.exchange_delete(names.dead_exchange)
    connection.close()
    store = redis.Redis.from_url(settings.redis_url or "")
    keys = [*store.scan_iter(f"*{names.prefix}*")]
    if keys:
        store.delete(*keys)


class Processes:
    """The relay, the bridge and workers, forked from this process (they share its TASKS)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._children: list[multiprocessing.process.BaseProcess] = []
        self._context = multiprocessing.get_context("fork")

    def start(self, target: Callable[[], None]) -> None:
        child = self._context.Process(target=target, daemon=False)
        child.start()
        self._children.append(child)

    def workers(self, count: int) -> None:
        for _ in range(count):
            self.start(lambda: work(self.app))

    def relay_and_bridge(self) -> None:
        self.start(lambda: _until_terminated(Relay(self.app).run))
        self.start(lambda: _until_terminated(Bridge(self.app).run))

    def stop(self) -> None:
        for child in self._children:
            child.terminate()  # SIGTERM: RQ's warm shutdown; the relay and bridge stop
        for child in self._children:
            child.join(timeout=15)
            if child.is_alive():
                child.kill()
                child.join()
        self._children.clear()


def _until_terminated(run: Callable[[threading.Event], None]) -> None:
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run(stop)


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s")
        time.sleep(0.005)


# --- 1. throughput ------------------------------------------------------------------


def bare_rq(app: Flask, starts: Starts, jobs: int) -> float:
    """Jobs/s: the jobs enqueued straight into RQ (as the bridge enqueues them)."""
    starts.clear()
    default = dict(zip(QUEUE_NAMES, queues(app), strict=True))["default"]
    names = Names(app.extensions["settings"].queue_prefix)
    delays = retry_delays("default")
    started = time.perf_counter()
    for _ in range(jobs):
        message_id = next(_BARE_IDS)
        default.enqueue_call(  # what the bridge does with a message (app/jobs/bridge.py)
            "app.jobs.tasks.run_message",
            args=(message_id, KIND, {}),
            job_id=job_id(names, str(message_id)),
            unique=True,
            retry=Retry(max=len(delays), interval=delays),
            timeout=JOB_TIMEOUTS["default"],
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
    _wait(lambda: starts.count() >= jobs, 600)
    return jobs / (time.perf_counter() - started)


def commit_events(app: Flask, count: int, *, every: float = 0.0) -> dict[int, float]:
    """Commit `count` events (an outbox row each, one transaction each); id -> commit time."""
    committed: dict[int, float] = {}
    for _ in range(count):
        with db.background(app), db.transaction() as session:
            message = outbox.add_message(session, KIND, {})
            message_id = message.id
        committed[message_id] = time.time()
        if every:
            time.sleep(every)
    return committed


def full_path(app: Flask, starts: Starts, jobs: int) -> float:
    """Jobs/s: commit -> outbox -> relay -> RabbitMQ -> bridge -> RQ -> the task."""
    starts.clear()
    started = time.perf_counter()
    commit_events(app, jobs)
    _wait(lambda: starts.count() >= jobs, 600)
    return jobs / (time.perf_counter() - started)


# --- 2. latency -----------------------------------------------------------------------


def latency(app: Flask, starts: Starts, events: int) -> list[float]:
    """Seconds from each commit to its task's start, at 5 events a second."""
    starts.clear()
    committed = commit_events(app, events, every=0.2)
    _wait(lambda: starts.count() >= events, 120)
    began = starts.read()
    return sorted(began[i] - t for i, t in committed.items())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- 3. a web request with and without its outbox row ---------------------------------


@dataclass(frozen=True)
class RequestCost:
    """Medians of one variant of the sign-up: wall time, this process's CPU, SQL statements."""

    wall: float
    cpu: float
    statements: float


def request_cost(settings: Settings, requests: int) -> tuple[RequestCost, RequestCost, float]:
    """A sign-up with the outbox handler and without it, interleaved; and the median of a
    bare PostgreSQL round trip (SELECT 1) in the same run, to read the difference by.

    Measured first, before the relay, bridge and workers start: this is what the request
    itself pays. With them running, each welcome email wakes three processes that compete
    for this machine's two cores with the next request; that work is the pipeline's, and
    the throughput and latency figures measure it."""
    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    bus = EventBus.get_instance()
    statements = [0]
    event.listen(db.engine_for(app), "before_cursor_execute", lambda *_: _bump(statements))
    seen: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
    run = uuid.uuid4().hex[:6]
    for i in range(requests + 20):
        for with_outbox in (i % 2 == 0, i % 2 != 0):  # alternate which goes first
            bus.unsubscribe("outbox")
            if with_outbox:
                bus.subscribe(OutboxHandler())
            form = {"email": f"u{run}-{i}-{int(with_outbox)}@example.com", "name": "Bench"}
            form |= {"password": PASSWORD, "confirm_password": PASSWORD}
            statements[0] = 0
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.post("/register", data=form)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert response.status_code == 303, response.status_code
            if i >= 20:  # the first ones warm up
                seen[with_outbox].append((wall, cpu, statements[0]))
    bus.unsubscribe("outbox")
    bus.subscribe(OutboxHandler())
    round_trip = _round_trip(app)
    db.dispose(app)
    with_row, without = (
        RequestCost(*(statistics.median(column) for column in zip(*seen[v], strict=True)))
        for v in (True, False)
    )
    return with_row, without, round_trip


def _bump(counter: list[int]) -> None:
    counter[0] += 1


def _round_trip(app: Flask) -> float:
    with db.background(app), db.transaction() as session:
        times = []
        for _ in range(200):
            started = time.perf_counter()
            session.execute(text("SELECT 1"))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- the run --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs per throughput run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300, help="sign-ups per variant")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs (medians shown)")
    parser.add_argument(
        "--parts",
        default="throughput,latency,requests",
        help="which measurements, comma-separated (default: all three)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"):
        if not os.environ.get(name):
            print(f"bench/jobs.py needs {name}; skipped")
            return 0
    with bench_services(args) as settings:
        if "requests" in args.parts:
            print_request_cost(settings, args.requests)
        if not {"throughput", "latency"} & set(args.parts.split(",")):
            return 0
        app = create_app(settings)
        starts = Starts(settings.redis_url or "", f"{settings.queue_prefix}:starts")
        dispatch.TASKS[KIND] = starts.note  # before forking: every process knows the task
        db.dispose(app)
        processes = Processes(app)
        processes.workers(args.workers)
        processes.relay_and_bridge()
        try:
            report(app, starts, args)
        finally:
            processes.stop()
            db.dispose(app)
    return 0


def report(app: Flask, starts: Starts, args: argparse.Namespace) -> None:
    if "throughput" in args.parts:
        print_throughput(app, starts, args)
    if "latency" in args.parts:
        waits = latency(app, starts, args.latency_events)
        p50, p99 = percentile(waits, 0.5) * 1000, percentile(waits, 0.99) * 1000
        print(
            f"latency commit -> task start, {args.latency_events} events at 5/s: "
            f"p50 {p50:.0f} ms (goal < 250), p99 {p99:.0f} ms (goal < 1000), "
            f"max {waits[-1] * 1000:.0f} ms",
            flush=True,
        )


def print_throughput(app: Flask, starts: Starts, args: argparse.Namespace) -> None:
    print(f"jobs: {args.jobs} per run, {args.workers} forking RQ workers, {args.rounds} rounds")
    bare_rq(app, starts, 50)  # warm-up: workers started, queues declared
    full_path(app, starts, 50)
    bare, full = [], []
    for _ in range(args.rounds):
        bare.append(bare_rq(app, starts, args.jobs))
        full.append(full_path(app, starts, args.jobs))
        print(f"  bare RQ {bare[-1]:7.1f} jobs/s   full path {full[-1]:7.1f} jobs/s", flush=True)
    ratio = statistics.median(full) / statistics.median(bare)
    print(
        f"throughput (medians): bare RQ {statistics.median(bare):.1f} jobs/s, "
        f"full path {statistics.median(full):.1f} jobs/s = {ratio:.2f}x (goal >= 0.50)",
        flush=True,
    )


def print_request_cost(settings: Settings, requests: int) -> None:
    with_row, without, round_trip = request_cost(settings, requests)
    print(
        f"sign-up request ({requests} each, medians): with its outbox row "
        f"{with_row.wall * 1000:.2f} ms, without {without.wall * 1000:.2f} ms, "
        f"difference {(with_row.wall - without.wall) * 1000:+.2f} ms (goal <= 1 ms)"
    )
    print(
        f"  CPU in the web process {with_row.cpu * 1000:.2f} vs {without.cpu * 1000:.2f} ms "
        f"({(with_row.cpu - without.cpu) * 1000:+.2f}); SQL statements {with_row.statements:.0f}"
        f" vs {without.statements:.0f}; a PostgreSQL round trip (SELECT 1) "
        f"{round_trip * 1000:.2f} ms in this run"
    )


if __name__ == "__main__":
    sys.exit(main())
