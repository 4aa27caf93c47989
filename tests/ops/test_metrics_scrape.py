"""Every metric the dashboard and the alert rules in ops/ use is on a real /metrics scrape.

The stack runs as production runs it: gunicorn (`web`), `flask worker` and `flask bridge`
as separate processes on PostgreSQL, Redis and RabbitMQ, all writing to one
PROMETHEUS_MULTIPROC_DIR. The test drives it over HTTP: webhook endpoints (one answering
410, so it is disabled), an item that fires them, sign-ins good and bad, a sign-up whose
welcome email fails (the SMTP server is down: a job failure), a message no task can read
(a dead letter) and a Redis outage seen by the web (503s, a breaker, app_service_up 0).
Then the scrape must hold every name; a name only a dashboard knows would draw nothing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from app import create_app
from app.core import migrations
from app.extensions import db
from app.jobs.broker import connect
from app.jobs.queues import QUEUE_NAMES, Names
from app.settings import normalize_database_url
from tests.conftest import RUN_ID, free_port, make_settings, require
from tests.factories import FAST_ITERATIONS, PASSWORD, make_role_accounts
from tests.faults.proxy import FaultProxy
from tests.ops.promql import names_used
from tests.webhooks.receiver import Receiver, start_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.rabbitmq]

ROOT = Path(__file__).resolve().parents[2]

# The payment metrics; their series exist at 0 from the start (app/services/payment.py), so
# a scrape shows them before the first payment.
PAYMENT_METRICS = frozenset(
    {
        "app_payments_total",
        "app_payment_fallbacks_total",
        "app_payment_unknown_outcomes_total",
        "app_payment_provider_seconds_bucket",
        "app_payment_provider_seconds_count",
        "app_payment_provider_seconds_sum",
        "app_payments_unknown_oldest_age_seconds",
    }
)
PAYMENTS_BUILT = importlib.util.find_spec("app.services.payment") is not None


@dataclass
class Stack:
    url: str
    prefix: str  # of Redis keys and queue names
    redis_proxy: FaultProxy
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def scrape(self) -> str:
        response = requests.get(self.url + "/metrics", timeout=15)
        assert response.status_code == 200, response.text[:300]
        return response.text

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.logs.iterdir())
        )


def _sample_names(scrape: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(scrape) for s in f.samples}


def _samples(scrape: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(scrape)
        for s in f.samples
        if s.name == name
    }


@pytest.fixture
def stack_db() -> Iterator[str]:
    """A database of its own: three processes commit to it."""
    base = normalize_database_url(require("DATABASE_URL"))
    name = f"test_stack_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    migrations.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def stack(stack_db: str, tmp_path: Path) -> Iterator[Stack]:
    redis_url, rabbitmq_url = require("REDIS_URL"), require("RABBITMQ_URL")
    prefix = f"test-stack-{uuid.uuid4().hex[:8]}"
    seeding = create_app(make_settings(tmp_path / "seed", database_url=stack_db))
    with seeding.app_context(), db.transaction() as session:
        make_role_accounts(session)
    db.dispose(seeding)
    port = free_port()
    metrics_dir, logs = tmp_path / "metrics", tmp_path / "logs"
    metrics_dir.mkdir()
    logs.mkdir()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "stack-test-secret-" + "s" * 32,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": stack_db,
        "REDIS_URL": redis_url,
        "RABBITMQ_URL": rabbitmq_url,
        "REDIS_KEY_PREFIX": prefix,
        "QUEUE_PREFIX": prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PASSWORD_HASH_ITERATIONS": str(FAST_ITERATIONS),
        "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",  # nobody listens: every email fails
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "DRAIN_FLAG_FILE": str(tmp_path / "draining"),
    }
    env.pop("JOBS_MODE", None)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        "worker": [*flask, "worker"],
        "bridge": [*flask, "bridge"],
    }
    proxy = FaultProxy.for_url(redis_url).start()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in commands.items():
        # only the web reaches Redis through the proxy: its outage is the web's alone
        own = {**env, "REDIS_URL": proxy.url(redis_url)} if name == "web" else env
        with (logs / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=own, stdout=log, stderr=subprocess.STDOUT
            )
    found = Stack(f"http://127.0.0.1:{port}", prefix, proxy, processes, logs)
    try:
        _wait_for(lambda: _answers(found.url + "/readyz") == 200, 90, found, "the web to be ready")
        yield found
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        proxy.stop()
        _drop_queues(rabbitmq_url, prefix)
        store = redis.Redis.from_url(redis_url)
        keys = [*store.scan_iter(f"*{prefix}*")]
        if keys:
            store.delete(*keys)


def _answers(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def _wait_for(
    done: Callable[[], bool], seconds: float, stack: Stack, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        dead = [n for n, p in stack.processes.items() if p.poll() is not None]
        assert not dead, f"{dead} exited while waiting for {_say(what)}\n{stack.tail()}"
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {_say(what)}\n{stack.tail()}")


def _say(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def _drop_queues(url: str, prefix: str) -> None:
    names = Names(prefix)
    connection = connect(url)
    channel = connection.channel()
    for name in (*(names.queue(q) for q in QUEUE_NAMES), names.dead_queue):
        channel.queue_delete(name)
    channel.exchange_delete(names.exchange)
    channel.exchange_delete(names.dead_exchange)
    connection.close()


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10)
    found = re.search(r'"X-CSRFToken": "([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def _api_token(url: str, email: str, password: str = PASSWORD) -> dict[str, str]:
    answer = requests.post(
        url + "/api/v1/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _signed_in(url: str) -> requests.Session:
    browser = requests.Session()
    form = {"email": "user@example.com", "password": PASSWORD}
    form["csrf_token"] = _csrf(browser, url + "/login")
    answer = browser.post(url + "/login", data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text[:300]
    return browser


def _exercise_webhooks(stack: Stack, ok: Receiver, gone: Receiver) -> None:
    admin = _api_token(stack.url, "admin@example.com")
    for receiver in (ok, gone):
        created = requests.post(
            stack.url + "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["item.created"]},
            headers=admin,
            timeout=10,
        )
        assert created.status_code == 201, created.text
    user = _api_token(stack.url, "user@example.com")
    item = {"name": "Lamp", "price": "2.00"}
    answer = requests.post(stack.url + "/api/v1/items", json=item, headers=user, timeout=10)
    assert answer.status_code == 201, answer.text


def _exercise_accounts(stack: Stack) -> requests.Session:
    for email, password in (("user@example.com", "wrong-password"), ("nobody@example.com", "x")):
        answer = requests.post(
            stack.url + "/api/v1/auth/login",
            json={"email": email, "password": password},
            timeout=10,
        )
        assert answer.status_code == 401, answer.text
    newcomer = requests.Session()
    form = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    form |= {"confirm_password": PASSWORD, "csrf_token": _csrf(newcomer, stack.url + "/register")}
    answer = newcomer.post(stack.url + "/register", data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text[:300]
    browser = _signed_in(stack.url)
    for query in ("", "?page=2", "", "?q=lamp", ""):  # misses, then hits, in both tiers
        assert browser.get(stack.url + "/items" + query, timeout=10).status_code == 200
    assert browser.get(stack.url + "/no-such-page", timeout=10).status_code == 404
    return browser


def _publish_undecodable(prefix: str) -> None:
    """A message no task can read, straight onto a work queue: the bridge dead-letters it."""
    connection = connect(require("RABBITMQ_URL"))
    properties = pika.BasicProperties(message_id="not-a-number", delivery_mode=2)
    connection.channel().basic_publish("", Names(prefix).queue("default"), b"{", properties)
    connection.close()


def _redis_outage(stack: Stack, browser: requests.Session) -> dict[str, float]:
    """Cut the web's Redis: signed-in pages answer 503; returns app_service_up meanwhile."""
    stack.redis_proxy.cut()
    try:
        for _ in range(3):
            answer = browser.get(stack.url + "/items", timeout=10)
            assert answer.status_code == 503, answer.text[:300]
            assert answer.headers["Retry-After"]
        up = _samples(stack.scrape(), "app_service_up")
    finally:
        stack.redis_proxy.restore()
    _wait_for(lambda: _answers(stack.url + "/readyz") == 200, 30, stack, "Redis to be back")
    return {dict(labels)["service"]: value for labels, value in up.items()}


def test_every_metric_the_dashboard_and_alerts_use_is_on_a_real_scrape(stack: Stack) -> None:
    ok, gone = start_receiver(), start_receiver()
    gone.answers.extend([(410, {}, "gone", 0.0)] * 5)
    try:
        _exercise_webhooks(stack, ok, gone)
        browser = _exercise_accounts(stack)
        _publish_undecodable(stack.prefix)
        up_during_outage = _redis_outage(stack, browser)

        used = names_used()
        required = {n for n in used if n not in PAYMENT_METRICS or PAYMENTS_BUILT}
        missing: set[str] = set(required)

        def everything_seen() -> bool:
            missing.intersection_update(required - _sample_names(stack.scrape()))
            return not missing and len(ok.received) == 1 and len(gone.received) == 1

        _wait_for(
            everything_seen,
            120,
            stack,
            lambda: (
                f"these metrics on /metrics: {sorted(missing)}, "
                f"webhooks received: {len(ok.received)} and {len(gone.received)} (want 1 and 1)"
            ),
        )
    finally:
        ok.stop()
        gone.stop()
    assert up_during_outage == {"database": 1.0, "redis": 0.0, "rabbitmq": 1.0}
    final = stack.scrape()
    assert {dict(k)["service"]: v for k, v in _samples(final, "app_service_up").items()} == {
        "database": 1.0,
        "redis": 1.0,
        "rabbitmq": 1.0,
    }
    disabled = _samples(final, "app_webhook_endpoints_disabled_total")
    assert disabled[(("reason", "gone"),)] == 1.0
    refused = {dict(k)["service"]: v for k, v in _samples(final, "app_unavailable_total").items()}
    assert sum(refused.values()) >= 3 and set(refused) <= {"sessions", "redis"}, refused
    failures = _samples(final, "app_job_failures_total")
    assert failures.get((("queue", "emails"),), 0) >= 1, failures
    dead = _samples(final, "app_dead_letters_total")
    assert dead.get((("reason", "undecodable message"),), 0) == 1, dead
    labels = {
        v
        for f in text_string_to_metric_families(final)
        for s in f.samples
        for v in s.labels.values()
    }
    assert not {v for v in labels if "@" in v or v.startswith("/items/1")}, "a path or an email"


def test_payment_metrics_are_named_as_agreed() -> None:
    """Every payment metric the dashboard and alerts use is one payments will export."""
    used = names_used()
    payment_names = {n for n in used if n.startswith("app_payment")}
    assert payment_names <= PAYMENT_METRICS, payment_names - PAYMENT_METRICS
    assert {"app_payments_total", "app_payments_unknown_oldest_age_seconds"} <= payment_names
