"""User import throughput and memory: the pipeline against a hand-written loop.

    python bench/pipeline.py             # 100,000 rows on SQLite, and PostgreSQL if DATABASE_URL
    python bench/pipeline.py --rows 1000000 --repeats 1 --variants pipeline   # the memory check
    python bench/pipeline.py --database-url postgresql://postgres@127.0.0.1:5432/test

Both variants do the same work on the same generated CSV: the file check
(``open_user_csv``), the same row parsing and validation (``parse_row``, which
normalises emails with email-validator), duplicates inside the file, one IN
query per batch of 100 for emails already registered, ``add_all`` plus one
USER_CREATED event (so one audit row) per user, a commit per batch, and a
rejects file. Only the control flow differs: ``import_users`` runs the
pipeline's stages; the loop is written out by hand. Each run gets a fresh
database and its own process, so timings and peak memory (ru_maxrss) never mix.
Figures are printed, not asserted.

``--without-cache-events`` unsubscribes the "cache-invalidation" event handler
in both variants. As of this writing it registers one ``after_commit`` listener
on the session per event and never removes it, so a long import's session
gathers one listener per user: memory grows linearly and every commit walks
them all. The flag shows the import's own cost until that is fixed (the ORM
after-commit hook still invalidates the users' cache tags).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("pipeline", "loop")


# --- the two variants (run in a child process) ---------------------------------------


def run_pipeline(session: Any, source: Any, write_reject: Callable[[Any], None]) -> int:
    """The service as the CLI calls it."""
    from app.services.user_import import import_users

    report = import_users(session, source.rows(), on_reject=write_reject)
    return report.created


def run_loop(session: Any, source: Any, write_reject: Callable[[Any], None]) -> int:
    """The same validation, duplicate checks, batched inserts and events, as a plain loop."""
    from app.services.user_import import BATCH_SIZE, RejectedRow, parse_row

    seen: dict[str, int] = {}
    batch: list[Any] = []
    created = 0
    for row in source.rows():
        if row.is_blank():
            continue
        candidate = parse_row(row)
        problems = list(candidate.problems)
        if not problems:
            first = seen.setdefault(candidate.email, row.number)
            if first != row.number:
                problems = [("email", f"duplicate of row {first}")]
        for field, reason in problems:
            write_reject(RejectedRow(row.number, candidate.email, field, reason, row.values))
        if problems:
            continue
        batch.append(candidate)
        if len(batch) == BATCH_SIZE:
            created += _loop_batch(session, batch, write_reject)
            batch = []
    if batch:
        created += _loop_batch(session, batch, write_reject)
    return created


def _loop_batch(session: Any, batch: list[Any], write_reject: Callable[[Any], None]) -> int:
    """One IN query, then add_all + one event per user, committed together."""
    from app.core.events import SYSTEM
    from app.core.sql import transaction
    from app.repositories.users import UserRepository
    from app.services.user_import import ALREADY_REGISTERED, RejectedRow, announce_imported

    repo = UserRepository(session)
    taken = repo.existing_emails([c.email for c in batch])
    fresh = [c for c in batch if c.email not in taken]
    for c in batch:
        if c.email in taken:
            write_reject(
                RejectedRow(c.row.number, c.email, "email", ALREADY_REGISTERED, c.row.values)
            )
    if not fresh:
        return 0
    with transaction(session):
        for user in repo.add_all([c.to_user() for c in fresh]):
            announce_imported(session, user, SYSTEM)
    return len(fresh)


def child(variant: str, url: str, csv_path: Path, workdir: Path, *, cache_events: bool) -> None:
    """Run one variant once in this process and print its figures as JSON."""
    from app import create_app
    from app.extensions import db
    from app.services.user_import import open_rejects, open_user_csv
    from app.settings import Settings

    settings = Settings(
        env="development",
        secret_key="bench-" + "x" * 40,
        instance_path=workdir,
        database_url=url,
        metrics_enabled=False,
        log_level="WARNING",
        log_json=False,
    )
    app = create_app(settings)
    if not cache_events:
        from app.core.events import EventBus

        EventBus.get_instance().unsubscribe("cache-invalidation")
    run = run_pipeline if variant == "pipeline" else run_loop
    with app.app_context():
        base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu_started = time.perf_counter(), time.process_time()
        source = open_user_csv(csv_path)
        with open_rejects(workdir / f"{variant}.rejects.csv", source.columns) as write_reject:
            created = run(db.session, source, write_reject)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"rows": source.data_rows, "created": created, "seconds": seconds, "cpu": cpu}
    figures |= {"base_mb": base_kb / 1024, "peak_mb": peak_kb / 1024}
    print(json.dumps(figures))


# --- the parent: data, fresh databases, repeats, the table ------------------------------


def make_csv(path: Path, rows: int, *, seed: int = 42) -> None:
    """Write a user CSV with ~1% bad emails, ~1% bad roles, ~1% duplicates and a few blanks."""
    rng = random.Random(seed)
    roles = ["user"] * 8 + ["admin", "guest", ""]
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name,role,active\n")
        for i in range(rows):
            roll = rng.random()
            email = f"person{i}@example.com"
            role = rng.choice(roles)
            if roll < 0.01:
                email = f"person{i}.example.com"
            elif roll < 0.02:
                role = "root"
            elif roll < 0.03 and i:
                email = f"PERSON{rng.randrange(i)}@example.com"
            elif roll < 0.032:
                fh.write(",,,\n")
                continue
            fh.write(f"{email},Person {i},{role},{rng.choice(['true', 'no', '1', ''])}\n")


@contextmanager
def fresh_database(kind: str, admin_url: str | None, workdir: Path) -> Iterator[str]:
    """A new, migrated, empty database for one run; dropped afterwards."""
    from app.core.migrations import upgrade

    name = f"bench_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        path = workdir / f"{name}.sqlite3"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url or "", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(urlsplit(admin_url or "")._replace(path=f"/{name}"))
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_child(
    variant: str, url: str, csv_path: Path, workdir: Path, *, cache_events: bool
) -> dict[str, float]:
    """Run a variant in a fresh interpreter and return its figures."""
    cmd = [sys.executable, __file__, "--child", variant, "--url", url, "--csv", str(csv_path)]
    cmd += ["--workdir", str(workdir)]
    if not cache_events:
        cmd.append("--without-cache-events")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_backend(
    kind: str, admin_url: str | None, csv_path: Path, args: argparse.Namespace
) -> None:
    """Repeat each variant on fresh databases (alternating order) and print medians."""
    results: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for repeat in range(args.repeats):
        order = args.variants if repeat % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            with fresh_database(kind, admin_url, args.workdir) as url:
                figures = run_child(
                    variant, url, csv_path, args.workdir, cache_events=args.cache_events
                )
            results[variant].append(figures)
            rate, cpu_rate = figures["rows"] / figures["seconds"], figures["rows"] / figures["cpu"]
            print(
                f"  {kind:<10} {variant:<8} run {repeat + 1}: {rate:>9,.0f} rows/s "
                f"({cpu_rate:,.0f} per CPU second), peak {figures['peak_mb']:.0f} MB",
                flush=True,
            )
    print_table(kind, results)


def print_table(kind: str, results: dict[str, list[dict[str, float]]]) -> None:
    """Median rows/s (wall clock and per CPU second), peak memory, and pipeline / loop ratios.

    The CPU figure counts this process only (not the PostgreSQL server) and is
    less disturbed by other work on a busy machine than the wall clock.
    """
    rates: dict[str, tuple[float, float]] = {}
    for variant, runs in results.items():
        wall = statistics.median(r["rows"] / r["seconds"] for r in runs)
        cpu = statistics.median(r["rows"] / r["cpu"] for r in runs)
        rates[variant] = (wall, cpu)
        peak = max(r["peak_mb"] for r in runs)
        base = max(r["base_mb"] for r in runs)
        print(
            f"{kind:<10} {variant:<8} median {wall:>7,.0f} rows/s ({cpu:,.0f} per CPU second) "
            f"over {len(runs)} run(s); peak RSS {peak:.0f} MB (app loaded: {base:.0f} MB); "
            f"created {runs[0]['created']:,.0f}"
        )
    if len(rates) == 2:
        (pipe_wall, pipe_cpu), (loop_wall, loop_cpu) = rates["pipeline"], rates["loop"]
        print(
            f"{kind:<10} ratio pipeline/loop: {pipe_wall / loop_wall:.2f}x wall clock, "
            f"{pipe_cpu / loop_cpu:.2f}x per CPU second"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), type=lambda s: s.split(","))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--without-cache-events",
        dest="cache_events",
        action="store_false",
        help="unsubscribe the cache-invalidation event handler (see the module docstring)",
    )
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.url, args.csv, args.workdir, cache_events=args.cache_events)
        return
    from app.settings import normalize_database_url

    backends: list[tuple[str, str | None]] = [] if args.no_sqlite else [("sqlite", None)]
    if args.database_url:
        backends.append(("postgresql", normalize_database_url(args.database_url)))
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        args.workdir = Path(tmp)
        csv_path = args.workdir / "users.csv"
        make_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"user import: {args.rows:,} rows ({size_mb:.1f} MB CSV), batches of 100, "
            f"{args.repeats} repeat(s), variants {', '.join(args.variants)}, "
            f"cache-invalidation handler {'on' if args.cache_events else 'off'}"
        )
        for kind, admin_url in backends:
            bench_backend(kind, admin_url, csv_path, args)


if __name__ == "__main__":
    main()
