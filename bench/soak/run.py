"""`make soak`: 50 users for 120 s per phase while Redis and PostgreSQL fail, then a deploy.

    .venv/bin/python -m bench.soak.run                   # the issue's soak: 120 s per phase
    SOAK_PHASE_SECONDS=40 .venv/bin/python -m bench.soak.run  # a quicker look
    .venv/bin/python -m bench.soak.run --phases baseline    # just some phases

One locust run (headless) drives the app for the whole soak, so users sign in once at
the start (a warm-up not counted) and then browse, edit, read the API, sign in again
and create items throughout; the phases are windows of that run. The app runs as the
Procfile runs it (gunicorn -c gunicorn.conf.py) on its own PostgreSQL and Redis (see
services.py), behind a balancer that follows /readyz (balancer.py). Exit status 1 when
a phase fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.soak import report
from bench.soak.balancer import Balancer
from bench.soak.services import BIN, ROOT, Postgres, Redis, Web, free_port, wait_until

PHASES = ("baseline", "redis-restart", "redis-pause", "pg-restart", "pg-stop", "sigterm-drain")
RESTART_FREE = {"baseline", "sigterm-drain"}
FAULT_AT = 0.3  # of the phase: the fault starts this far in, leaving most for recovery
REDIS_PAUSE_S = 15.0
PG_STOP_S = 20.0
ITEMS = 20_000


def say(message: str) -> None:
    print(message, flush=True)


class Soak:
    """The stack under test and what the phases do to it."""

    def __init__(self, workdir: Path, users: int) -> None:
        self.workdir = workdir
        self.users = users
        self.pg = Postgres(workdir)
        self.redis = Redis(workdir)
        self.webs: list[Web] = []
        self.balancer = Balancer(free_port())
        self.secret_key = secrets.token_hex(32)  # one for every web process, as in a deploy

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
        return {
            **keep,
            "APP_ENV": "production",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "PUBLIC_URL": f"http://127.0.0.1:{self.balancer.port}",
            "JOBS_MODE": "thread",
            "TRUSTED_PROXIES": "1",  # the balancer passes X-Forwarded-For through untouched
            "LOG_JSON": "1",
        }

    def start(self) -> None:
        say(f"soak: PostgreSQL on :{self.pg.port}, Redis on :{self.redis.port} ({self.workdir})")
        self.pg.init()
        self.redis.start()
        env = self.env()
        flask = [str(BIN / "flask"), "--app", "app"]
        seed = ["seed", "--users", str(self.users * 3), "--items", str(ITEMS)]
        for command in (["db", "upgrade"], seed):
            done = subprocess.run(
                [*flask, *command], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if done.returncode:
                raise RuntimeError(f"flask {command[0]} failed:\n{done.stderr[-3000:]}")
        with psycopg.connect(self.pg.url, autocommit=True) as conn:  # the demo password for all
            conn.execute(
                "UPDATE user_account SET password_hash = (SELECT password_hash FROM user_account"
                " WHERE email = 'user@example.com') WHERE email LIKE 'demo.user%'"
            )
        self.webs.append(Web(env, self.workdir / "web.log"))
        self.webs[0].start()
        self.balancer.set_backends([self.webs[0].port])
        self.balancer.start()

    @property
    def web(self) -> Web:
        return self.webs[-1]

    def stop(self) -> None:
        self.balancer.stop()
        for web in self.webs:
            web.kill()
        self.redis.resume_quietly()
        self.redis.stop()
        self.pg.stop()

    # --- faults: each returns the outage it caused, or None ----------------------------

    def redis_restart(self, phase: report.Phase) -> report.Outage:
        start = time.time()
        self.redis.stop()
        self.redis.start()
        return report.Outage(start, time.time())

    def redis_pause(self, phase: report.Phase) -> report.Outage:
        start = time.time()
        self.redis.pause()
        time.sleep(REDIS_PAUSE_S)
        self.redis.resume()
        return report.Outage(start, wait_until(self.redis.ready, 10, "Redis"))

    def pg_restart(self, phase: report.Phase) -> report.Outage:
        start = time.time()
        self.pg.stop()
        self.pg.start()
        return report.Outage(start, wait_until(self.pg.ready, 30, "PostgreSQL"))

    def pg_stop(self, phase: report.Phase) -> report.Outage:
        start = time.time()
        self.pg.stop()
        time.sleep(PG_STOP_S)
        self.pg.start()
        return report.Outage(start, wait_until(self.pg.ready, 30, "PostgreSQL"))

    def sigterm_drain(self, phase: report.Phase) -> None:
        """A deploy: start a new web, wait until it is ready, SIGTERM the old one."""
        old, new = self.web, Web(self.env(), self.workdir / "web2.log")
        new.start()
        self.webs.append(new)
        self.balancer.set_backends([old.port, new.port])
        sent = time.time()
        old.terminate()
        code = old.wait(timeout=120)
        self.balancer.set_backends([new.port])
        phase.note = f"old web exited {code} {time.time() - sent:.1f} s after SIGTERM"


def run_phases(soak: Soak, names: list[str], seconds: float, warmup: float) -> list[report.Phase]:
    """Drive one locust run through every phase; return the phases with their requests."""
    log = soak.workdir / "requests.jsonl"
    total = warmup + seconds * len(names) + 5
    locust = subprocess.Popen(
        [str(BIN / "locust"), "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
         "-u", str(soak.users), "-r", "1", "-t", f"{total:.0f}s", "--stop-timeout", "10",
         "--host", f"http://127.0.0.1:{soak.balancer.port}", "--only-summary",
         "--loglevel", "WARNING"],
        env={**os.environ, "SOAK_LOG": str(log), "SOAK_USERS": str(soak.users)},
        stdout=(soak.workdir / "locust.out").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    phases = []
    try:
        say(f"soak: {soak.users} users; {warmup:.0f} s warm-up, then {seconds:.0f} s a phase")
        time.sleep(warmup)
        for name in names:
            phases.append(run_phase(soak, name, seconds))
        locust.wait(timeout=120)
    finally:
        if locust.poll() is None:
            locust.kill()
    requests = report.load(log)
    report.assign(phases, requests)
    return phases


def run_phase(soak: Soak, name: str, seconds: float) -> report.Phase:
    start = time.time()
    phase = report.Phase(name, start, start + seconds, restart_free=name in RESTART_FREE)
    fault: Callable[[report.Phase], report.Outage | None] | None = {
        "redis-restart": soak.redis_restart,
        "redis-pause": soak.redis_pause,
        "pg-restart": soak.pg_restart,
        "pg-stop": soak.pg_stop,
        "sigterm-drain": soak.sigterm_drain,
    }.get(name)
    say(f"soak: phase {name}")
    if fault is not None:
        time.sleep(seconds * FAULT_AT)
        phase.outage = fault(phase)
        if phase.outage:
            down = phase.outage.end - phase.outage.start
            say(f"soak:   service back after {down:.1f} s")
    time.sleep(max(0.0, phase.end - 3 - time.time()))
    rss = soak.web.worker_rss_mb()
    phase.rss_mb = sum(rss) / len(rss) if rss else 0.0
    phase.load = os.getloadavg()[0]
    time.sleep(max(0.0, phase.end - time.time()))
    return phase


def created_rows(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, count(*) FROM item WHERE name LIKE 'Soak %' GROUP BY name"
        ).fetchall()
    return Counter(dict(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("SOAK_USERS", "50")))
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("SOAK_PHASE_SECONDS", "120"))
    )
    parser.add_argument(
        "--warmup", type=float, default=float(os.environ.get("SOAK_WARMUP_SECONDS", "60"))
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    names = [n for n in args.phases.split(",") if n]
    if unknown := set(names) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="ledgerly-soak-"))
    soak = Soak(workdir, args.users)
    try:
        soak.start()
        phases = run_phases(soak, names, args.seconds, args.warmup)
        wait_until(soak.pg.ready, 30, "PostgreSQL")
        lines, passed = report.table(phases, created_rows(soak.pg.url))
    finally:
        soak.stop()
    model = f"{os.environ.get('GUNICORN_WORKER_CLASS', 'gunicorn.conf.py default')}"
    say(f"\nsoak: {args.users} users, {args.seconds:.0f} s per phase, web workers: {model}\n")
    say("\n".join(lines))
    for p in phases:
        if bad := report.failures(p):
            say(f"{p.name} not 2xx/3xx: " + "; ".join(bad))
    if args.keep or not passed:
        say(f"\nsoak: {'PASS' if passed else 'FAIL'}  (logs kept in {workdir})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        say("\nsoak: PASS")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
