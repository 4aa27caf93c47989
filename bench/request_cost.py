"""CPU time per request, in-process, next to a bare Flask "hello" measured the same way.

    .venv/bin/python bench/request_cost.py --database-url postgresql://postgres@127.0.0.1:5432/<db>
    .venv/bin/python bench/request_cost.py --database-url ... --requests 400 --rounds 7

Wall-clock req/s swings with whatever else runs on the machine; the CPU time one request
costs the thread serving it does much less. This script builds the app as production
does (APP_ENV=production, every middleware, Prometheus in multiprocess mode, Redis as
the cache's L2 and session store under a random REDIS_KEY_PREFIX deleted afterwards,
TABLE_CACHE_TTL=0 so every table is queried and rendered), signs in once through the
login form, runs gunicorn.conf.py's post_worker_init hook as a worker would, and drives
it with Flask's test client: for each URL, `time.thread_time()` over --requests
requests, in --rounds interleaved rounds (median reported). The same is done for
bench/bare_app.py (a view returning "ok"), whose figure is the floor: the test client's
own work plus a minimal Flask request.

Then a short stage phase splits one signed-in request's CPU time into stages by timing
hooks this script puts around the app's functions (nothing in the app changes):

- auth/session: loading and saving the server-side session, loading the signed-in user,
  the CSRF token;
- query: SQLAlchemy statements and table pages read through the driver (building,
  executing, fetching) and cache reads outside auth;
- render: Jinja templates and fragments, and the items table region (written in Python);
- framework: the rest (WSGI, routing, middleware, limits, metrics, logging, the view's
  own Python, the test client).

Time inside a nested call goes to the innermost stage, except that everything under
auth/session stays there. The database must be migrated and seeded (`flask seed`);
bench/tables.py runs the stage phase against its own database at the end.
"""

from __future__ import annotations

import argparse
import functools
import html
import os
import re
import runpy
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EMAIL = "user@example.com"
PASSWORD = "demo-password"  # the seed's demo password
PER_PAGE = 25
STAGES = ("framework", "auth/session", "query", "render")


def say(message: str) -> None:
    print(message, flush=True)


# --- the app, built as production builds it ----------------------------------------------


def app_environment(database_url: str, redis_url: str | None, prefix: str, tmp: Path) -> None:
    """Environment variables for create_app (set before the app and prometheus_client load)."""
    for name in ("REDIS_URL", "RABBITMQ_URL", "SMTP_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        APP_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        INSTANCE_PATH=str(tmp / "instance"),
        LOG_LEVEL="WARNING",  # as bench/tables.py serves it: no access line per request
        REDIS_KEY_PREFIX=prefix,
        QUEUE_PREFIX=prefix,
        PUBLIC_URL="http://localhost",
        DATABASE_URL=database_url,
        TABLE_CACHE_TTL="0",  # every view queries and renders its table
        JOBS_MODE="manual",  # no relay thread: nothing is written here
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
    )
    (tmp / "metrics").mkdir(exist_ok=True)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url


def signed_in_client(app: Any, email: str) -> Any:
    """A test client that has signed in through the login form once."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not token:
        raise RuntimeError("no csrf_token on /login")
    form = {"csrf_token": html.unescape(token.group(1)), "email": email, "password": PASSWORD}
    answer = client.post("/login", data=form)
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"signing in answered {answer.status_code}")
    client.get("/items")  # pops the "Welcome back" flash
    return client


def deep_page_url(app: Any, page: int) -> str:
    """The keyset URL the pager's links lead to for `page` (default order)."""
    from sqlalchemy import text

    from app.extensions import db
    from app.web.tables import encode_cursor

    with app.app_context():
        row = db.session.execute(
            text("SELECT created_at, id FROM item ORDER BY created_at DESC, id DESC OFFSET :n"),
            {"n": (page - 1) * PER_PAGE - 1},
        ).first()
        total = db.session.execute(text("SELECT count(*) FROM item")).scalar_one()
        db.session.rollback()
    if row is None:
        raise RuntimeError(f"the database has {total} items, fewer than {page} pages")
    cursor = encode_cursor("after", (row[0], row[1]), 0)
    query = {"sort": "created_at", "dir": "desc", "page": page, "cursor": cursor}
    return f"/items?{urllib.parse.urlencode(query)}"


def worker_started() -> None:
    """What a gunicorn worker does once the app is loaded: gunicorn.conf.py's
    post_worker_init hook, if it has one (it freezes the loaded objects for the GC)."""
    hook = runpy.run_path(str(ROOT / "gunicorn.conf.py")).get("post_worker_init")
    if hook is not None:
        hook(None)


# --- CPU per request ----------------------------------------------------------------------


@dataclass
class Target:
    name: str
    client: Any
    path: str
    samples: list[float]  # CPU ms per request, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def cpu_ms_per_request(client: Any, path: str, requests: int) -> float:
    """Mean CPU ms of this thread per GET of `path` (every answer must be 200)."""
    started = time.thread_time()
    for _ in range(requests):
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        response.close()
    return (time.thread_time() - started) * 1000 / requests


def measure(targets: list[Target], *, requests: int, rounds: int, warmup: int = 20) -> None:
    for target in targets:
        cpu_ms_per_request(target.client, target.path, warmup)
    for _ in range(rounds):  # interleaved, so a busy spell on the machine hits every URL
        for target in targets:
            target.samples.append(cpu_ms_per_request(target.client, target.path, requests))


# --- stages -------------------------------------------------------------------------------


class StageClock:
    """Charges this thread's CPU time to the stage on top of a stack the hooks maintain."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.stack = ["framework"]
        self.mark = time.thread_time()

    def _switch(self) -> None:
        now = time.thread_time()
        self.totals[self.stack[-1]] += now - self.mark
        self.mark = now

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch()
            self.stack.append("auth/session" if self.stack[-1] == "auth/session" else stage)
            try:
                return function(*args, **kwargs)
            finally:
                self._switch()
                self.stack.pop()

        return timed

    def settle(self) -> None:
        """Charge the time since the last switch."""
        self._switch()

    def reset(self) -> None:
        self._switch()
        self.totals = dict.fromkeys(STAGES, 0.0)


@contextmanager
def stage_hooks(app: Any) -> Iterator[StageClock]:
    """Wrap the functions that mark a stage; undo it afterwards."""
    import flask_login
    import jinja2
    import jinja2_fragments.flask
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from app import security
    from app.core.cache.core import Cache
    from app.repositories import base as repositories
    from app.web import items

    clock = StageClock()
    session_interface = type(app.session_interface)
    patches: list[tuple[Any, str, str]] = [
        (session_interface, "open_session", "auth/session"),
        (session_interface, "save_session", "auth/session"),
        (flask_login.LoginManager, "_load_user", "auth/session"),
        (Session, "execute", "query"),
        (Connection, "execute", "query"),
        (repositories, "fetch_rows", "query"),  # table pages read through the driver
        (Cache, "get_or_set", "query"),
        (jinja2.Template, "render", "render"),
        (jinja2_fragments.flask, "_render_block", "render"),
        (items, "render_items_region", "render"),  # the table region, written in Python
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    for owner, name, stage in patches:
        setattr(owner, name, clock.wrap(stage, getattr(owner, name)))
    csrf = clock.wrap("auth/session", security.csrf_token)
    jinja_globals = app.jinja_env.globals
    saved_csrf = jinja_globals["csrf_token"]
    jinja_globals["csrf_token"] = csrf
    app.template_context_processors[None].append(lambda: {"csrf_token": csrf})
    try:
        yield clock
    finally:
        app.template_context_processors[None].pop()
        jinja_globals["csrf_token"] = saved_csrf
        for owner, name, original in saved:
            setattr(owner, name, original)


def stage_breakdown(app: Any, client: Any, path: str, requests: int) -> dict[str, float]:
    """CPU ms per request in each stage, over `requests` GETs of `path`."""
    with stage_hooks(app) as clock:
        cpu_ms_per_request(client, path, 5)
        clock.reset()
        cpu_ms_per_request(client, path, requests)
        clock.settle()
        return {stage: seconds * 1000 / requests for stage, seconds in clock.totals.items()}


def print_stages(rows: list[tuple[str, dict[str, float]]]) -> None:
    header = f"| {'page':<30} | " + " | ".join(f"{s:>12}" for s in STAGES) + f" | {'total':>7} |"
    say(header)
    say("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for name, stages in rows:
        cells = " | ".join(f"{stages[s]:12.2f}" for s in STAGES)
        say(f"| {name:<30} | {cells} | {sum(stages.values()):7.2f} |")


# --- the run ------------------------------------------------------------------------------


def run(
    database_url: str,
    *,
    redis_url: str | None,
    requests: int,
    rounds: int,
    deep_page: int,
    email: str = EMAIL,
    stages_only: bool = False,
) -> None:
    """Measure and print; the app is built here, in this process."""
    prefix = f"bench-cost-{uuid.uuid4()}"
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        app_environment(database_url, redis_url, prefix, Path(tmp))
        try:
            _run(requests, rounds, deep_page, email, stages_only)
        finally:
            if redis_url:
                from bench.tables import delete_redis_keys

                delete_redis_keys(redis_url, prefix)


def _run(requests: int, rounds: int, deep_page: int, email: str, stages_only: bool) -> None:
    from app import create_app
    from bench.bare_app import app as bare

    app = create_app()
    client = signed_in_client(app, email)
    worker_started()
    pages = [
        ("/profile", "/profile"),
        ("/items page 1 (cache off)", "/items"),
        (f"/items page {deep_page:,} (keyset)", deep_page_url(app, deep_page)),
    ]
    if not stages_only:
        targets = [
            Target("bare Flask hello", bare.test_client(), "/", []),
            Target("app /healthz (not signed in)", app.test_client(), "/healthz", []),
            *(Target(name, client, path, []) for name, path in pages),
        ]
        say(f"CPU ms per request ({requests} requests x {rounds} rounds, median of rounds):")
        measure(targets, requests=requests, rounds=rounds)
        floor = targets[0].median
        for t in targets:
            spread = f"{min(t.samples):.2f}-{max(t.samples):.2f}"
            say(f"  {t.name:<34} {t.median:7.2f} ms  ({spread})  {t.median / floor:5.1f}x hello")
        say("")
    say(f"Where a signed-in request's CPU goes (ms per request, {requests} requests each):")
    print_stages([(name, stage_breakdown(app, client, path, requests)) for name, path in pages])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        required="DATABASE_URL" not in os.environ,
        help="a migrated and seeded database",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="the cache's L2 and the session store",
    )
    parser.add_argument("--no-redis", action="store_true", help="L1 cache, cookie sessions")
    parser.add_argument("--requests", type=int, default=300, help="requests per URL per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--deep-page", type=int, default=20_000)
    parser.add_argument("--email", default=EMAIL)
    parser.add_argument(
        "--stages-only", action="store_true", help="only the per-stage split (bench/tables.py)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say(f"1-minute load average {os.getloadavg()[0]:.1f} (thread CPU time is measured)")
    run(
        args.database_url,
        redis_url=None if args.no_redis else args.redis_url,
        requests=args.requests,
        rounds=args.rounds,
        deep_page=args.deep_page,
        email=args.email,
        stages_only=args.stages_only,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
