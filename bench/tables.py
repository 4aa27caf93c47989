"""Throughput and latency of the items table under load, next to a bare Flask endpoint.

    .venv/bin/python bench/tables.py                       # fresh database, 1,000,000 items
    .venv/bin/python bench/tables.py --quick               # 5 s per URL instead of 15
    .venv/bin/python bench/tables.py --database-url postgresql://postgres@127.0.0.1:5432/mydb
    .venv/bin/python bench/tables.py --keep                # keep the database it created

Without --database-url it creates ``ledgerly_bench_<uuid8>`` on --admin-url, runs the
migrations and ``flask seed --items 1000000`` (bulk COPY), and drops that database at the
end unless --keep. With --database-url the database is used as it is (it must already be
migrated and seeded) and is never dropped.

The app is served as the Procfile does (``gunicorn -c gunicorn.conf.py "app:create_app()"``,
APP_ENV=production, every middleware on, Redis as the cache's L2 under a unique
REDIS_KEY_PREFIX whose keys are deleted at the end), and so are bench/bare_app.py, a view
returning "ok", and bench/reference_app.py, the same table written by hand (SQLAlchemy
Core, a count kept in memory, a Jinja template; no sign-in or middleware), and a second
copy of the app with TABLE_CACHE_TTL=0, so every view queries and renders its table region
(the cost of a first view or of a view right after a write): all with
WEB_CONCURRENCY sync workers (GUNICORN_THREADS=1: with more threads gunicorn runs gthread
instead). wrk then loads each URL at 32 connections (2 threads) after a short warm-up,
logged in (session cookie for the pages, bearer token for the API):
/items page 1 (on both copies), a deep page reached by keyset cursor (the URL a user
reaches through the pager), the last page, the same deep page by plain OFFSET, a
sorted page, a search, GET /api/v1/items, and mixed browsing: each request one of 3,840
distinct URLs at random (every sort column and direction, pages 1-20; one in five
searches for one of 15 words), as real users send them. Mixed browsing warms up longer
(--mixed-warmup, 20 s; 10 with --quick), so that it measures a site whose visitors keep
browsing: each worker has drawn the 240 unsearched URLs once and keeps them (the region
cache keeps the most recently viewed, TABLE_CACHE_MB), while most searches still miss it
and render; a cold view is what the first-render row measures. The targets of
issue 18: page 1, its first render (cache off) and mixed browsing each at least 15% of
bare's req/s. The bare endpoint runs first and last;
"% of bare" is against the mean of the two. Every URL is fetched once beforehand and must
answer 200 (wrk counts only 4xx/5xx as errors, so a redirect would otherwise pass unseen),
and after each wrk run the script waits until the server has served what wrk left queued,
so a slow URL cannot spill into the next one. --rounds N repeats the sequence and reports
medians. The pages are viewed as user@example.com (--email), signed in once.

Beside req/s, each run reads the CPU seconds the serving side spent (bench/cpu.py: the
server's gunicorn processes, the bench database's PostgreSQL backends and Redis, from
/proc) and prints it per request, with the share of bare it implies: what the ratios
would be on a machine of their own. On a shared machine req/s swings with the neighbours'
load; CPU per request much less.

At the end, bench/request_cost.py --stages-only splits a signed-in request's CPU time
(ms per request: framework, auth/session, query, render) for /profile, /items page 1 and
the deep page, region cache off, measured in-process with timing hooks (--no-stages skips
it; --stage-requests N per page).

Figures are printed, not asserted (--strict exits 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import html
import http.cookiejar
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu import Reading, ServingCPU, redis_pid  # noqa: E402 - after the path is set

BIN = Path(sys.executable).parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EMAIL = "user@example.com"
PASSWORD = "demo-password"  # the seed's demo password
PER_PAGE = 25

# Targets from the issue.
PAGE1_MIN_SHARE = 0.15  # /items page 1 req/s at least 15% of the bare endpoint's
FIRST_RENDER_MIN_SHARE = 0.15  # page 1 with the region cache off, the same (issue 18)
MIXED_MIN_SHARE = 0.15  # mixed browsing over thousands of URLs, the same (issue 18)
# Mixed browsing: what real users send, mostly missing the region cache: every sort
# column and direction, pages 1-20, no search or one of these words (the seed's names).
MIXED_SORTS = ("created_at", "updated_at", "name", "price", "status", "id")
MIXED_TERMS = ("", "amber", "cobalt", "falcon", "globe", "harbor", "lunar", "misty", "olive")
MIXED_TERMS += ("polar", "quiet", "rustic", "silver", "beacon", "drum", "island")
MIXED_PAGES = 20
KEYS = (
    "reference",
    "page1",
    "uncached",
    "deep",
    "last",
    "offset",
    "sorted",
    "search",
    "api",
    "mixed",
)
MIXED_SEARCH_SHARE = 0.2  # of requests; the rest browse (sort, direction, page) unsearched
DEEP_MAX_P99 = 1.5  # deep page p99 within 1.5x page 1's
SEARCH_MAX_P99 = 3.0  # search p99 within 3x page 1's


def say(message: str) -> None:
    print(message, flush=True)


# --- wrk -------------------------------------------------------------------------------


@dataclass
class Sample:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    cpu_ms: float | None = None  # serving CPU per request (bench/cpu.py), where readable
    cpu_parts: dict[str, float] = field(default_factory=dict)  # the same by part


@dataclass
class Result:
    """One URL: its samples (one per round) and their medians."""

    key: str  # what the target checks look it up by
    name: str
    url: str
    samples: list[Sample] = field(default_factory=list)
    skipped: str = ""
    script: Path | None = None  # a wrk Lua script choosing each request's path
    warmup: float | None = None  # seconds of warm-up, if not --warmup

    def _median(self, attribute: str) -> float:
        return statistics.median(getattr(s, attribute) for s in self.samples)

    @property
    def rps(self) -> float:
        return self._median("rps")

    @property
    def p50_ms(self) -> float:
        return self._median("p50_ms")

    @property
    def p99_ms(self) -> float:
        return self._median("p99_ms")

    @property
    def cpu_ms(self) -> float | None:
        measured = [s.cpu_ms for s in self.samples if s.cpu_ms is not None]
        return statistics.median(measured) if measured else None

    def cpu_part_ms(self, part: str) -> float | None:
        measured = [s.cpu_parts[part] for s in self.samples if part in s.cpu_parts]
        return statistics.median(measured) if measured else None

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.samples)

    @property
    def failures(self) -> int:
        return sum(s.non_2xx + s.socket_errors for s in self.samples)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise RuntimeError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> Sample:
    """Requests/s, p50, p99 and error counts from wrk --latency output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"could not parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Sample(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def wrk(
    url: str,
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    threads: int,
    script: Path | None = None,
) -> str:
    cmd = ["wrk", "-c", str(connections), "-t", str(threads), "-d", f"{seconds:g}s"]
    cmd += ["--latency", "--timeout", "30s"]  # gunicorn's worker timeout
    if script is not None:
        cmd += ["-s", str(script)]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, check=True)
    return done.stdout


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("wrk is not installed; install it (Debian: apt-get install wrk) and run again.")
    say("wrk is missing; installing the Debian package: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
    if not shutil.which("wrk"):
        say("  not found in the package lists; running apt-get update first")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)


# --- plain HTTP (the set-up requests, not the load) -----------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_plain = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Status and body of one GET, without following redirects."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _plain.open(request, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def web_login(base: str, email: str) -> str:
    """Sign in through the login form once; return the session cookie's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login", timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not token:
        raise RuntimeError("no csrf_token on /login")
    form = urllib.parse.urlencode(
        {"csrf_token": html.unescape(token.group(1)), "email": email, "password": PASSWORD}
    ).encode()
    with opener.open(f"{base}/login", data=form, timeout=60) as response:
        response.read()
    # One page view pops the "Welcome back" flash, so the cookie wrk replays is a steady one.
    with opener.open(f"{base}/items", timeout=60) as response:
        response.read()
    for cookie in jar:
        if cookie.name == "session" and cookie.value:
            return cookie.value
    raise RuntimeError("signing in set no session cookie (wrong password or rate limited?)")


def api_login(base: str, email: str) -> str | None:
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            token: str = json.load(response)["access_token"]
            return token
    except urllib.error.HTTPError as exc:
        say(f"  API sign-in answered {exc.code}; GET /api/v1/items will be skipped")
        return None


# --- servers, database, Redis ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], log: Path, port: int, groups: dict[str, int]
) -> Iterator[str]:
    """Serve `app_spec` like the Procfile does; yield its base URL (and note its process
    group in `groups`, for its CPU time); stop it afterwards."""
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", app_spec],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    groups[base] = process.pid  # a session of its own: the arbiter's pid is the group's
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn {app_spec} exited:\n{log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app_spec} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the arbiter we started and its workers
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def bench_database(args: argparse.Namespace, env: dict[str, str]) -> Iterator[str]:
    """The database URL to bench against; create, migrate and seed one if none was given."""
    if args.database_url:
        say(f"Using {args.database_url} as it is (no migrations, no seeding, never dropped)")
        yield args.database_url
        return
    name = f"ledgerly_bench_{uuid.uuid4().hex[:8]}"
    url = _with_database(args.admin_url, name)
    with _pg_connect(args.admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    say(f"Created database {name}")
    try:
        flask = [str(BIN / "flask"), "--app", "app"]
        run_env = {**env, "DATABASE_URL": url}
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=run_env, check=True)
        say(f"Seeding {args.items:,} items (bulk COPY)...")
        started = time.perf_counter()
        subprocess.run(
            [*flask, "seed", "--items", str(args.items)], cwd=ROOT, env=run_env, check=True
        )
        say(f"  seeded in {time.perf_counter() - started:.0f} s")
        yield url
    finally:
        if args.keep:
            say(f"Kept database {name}: --database-url {url}")
        else:
            with _pg_connect(args.admin_url) as conn:  # only the database this run created
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"Dropped database {name}")


def delete_redis_keys(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    client.close()
    return deleted


# --- the URLs --------------------------------------------------------------------------


def deep_page_url(database_url: str, page: int) -> tuple[str, int]:
    """The keyset URL of `page` in the default order, and the id its first row must show.

    It is the URL the pager's Next link on page - 1 carries: after the sort key of that
    page's last row, with no skip.
    """
    from app.web.tables import encode_cursor

    with _pg_connect(database_url) as conn:
        rows = conn.execute(
            "SELECT created_at, id FROM item ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 2",
            ((page - 1) * PER_PAGE - 1,),
        ).fetchall()
    (created_at, last_id), (_, first_id) = rows
    cursor = encode_cursor("after", (created_at, last_id), 0)
    query = urllib.parse.urlencode(
        {"sort": "created_at", "dir": "desc", "page": page, "cursor": cursor}
    )
    return f"/items?{query}", first_id


def last_page_url(page_one_html: str) -> str:
    """The href of page 1's "Last »" link (cursor=last)."""
    match = re.search(r'<a href="([^"]+)"[^>]*aria-label="Last page"', page_one_html, re.S)
    if not match:
        raise RuntimeError('no "Last »" link on /items')
    return html.unescape(match.group(1))


def item_count(database_url: str) -> int:
    with _pg_connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM item").fetchone()[0])


# --- the run ---------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores{f' ({cpu})' if cpu else ''}, Python {platform.python_version()}"


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def drain(base: str, path: str) -> None:
    """Wait until the server has worked off what wrk left queued.

    wrk stops by closing its connections, but requests already in the listen queue are
    still served; a slow URL would otherwise eat into the next URL's measurement.
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.perf_counter()
        fetch(base + path)
        if time.perf_counter() - started < 0.25:
            return


def measure(
    result: Result,
    base: str,
    headers: dict[str, str],
    idle_path: str,
    args: argparse.Namespace,
    cpu: Callable[[], Reading] | None = None,
) -> None:
    """One round for one URL: check it answers 200, warm up, load, check again; `cpu`
    reads the serving side's CPU seconds so far (bench/cpu.py)."""
    if result.skipped:
        return
    url = base + result.url
    status, _ = fetch(url, headers)
    if status != 200:
        result.skipped = f"HTTP {status} before the load"
        say(f"  {result.name:<40} skipped: {result.skipped}")
        return
    load = {"seconds": args.duration, "connections": args.connections, "threads": args.threads}
    wrk(url, headers, **{**load, "seconds": result.warmup or args.warmup}, script=result.script)
    drain(base, idle_path)
    before = cpu() if cpu else {}
    sample = parse_wrk(wrk(url, headers, **load, script=result.script))
    drain(base, idle_path)
    if cpu and sample.requests:
        after = cpu()
        sample.cpu_parts = {
            part: ServingCPU.spent({part: before.get(part, {})}, {part: now})
            * 1000
            / sample.requests
            for part, now in after.items()
        }
        sample.cpu_ms = sum(sample.cpu_parts.values())
    after, _ = fetch(url, headers)
    if after != 200:
        sample.non_2xx += 1
        say(f"  note: {result.name} answered {after} after the load")
    result.samples.append(sample)
    spent = ""
    if sample.cpu_ms is not None:
        parts = ", ".join(f"{part} {ms:.2f}" for part, ms in sample.cpu_parts.items())
        spent = f"  CPU {sample.cpu_ms:5.2f} ms/req ({parts})"
    say(
        f"  {result.name:<40} {sample.rps:8.1f} req/s  p50 {sample.p50_ms:7.1f} ms  "
        f"p99 {sample.p99_ms:7.1f} ms  errors {sample.non_2xx + sample.socket_errors}{spent}"
    )


def mixed_paths() -> tuple[list[str], list[str]]:
    """The mixed-browsing URLs: unsearched (6 sorts x 2 directions x 20 pages) and searched
    (the same for each of 15 words)."""
    browse, search = [], []
    for term in MIXED_TERMS:
        for sort in MIXED_SORTS:
            for direction in ("asc", "desc"):
                for page in range(1, MIXED_PAGES + 1):
                    query = {"q": term} if term else {}
                    query |= {"sort": sort, "dir": direction, "page": str(page)}
                    (search if term else browse).append(f"/items?{urllib.parse.urlencode(query)}")
    return browse, search


def mixed_script(
    browse: list[str], search: list[str], directory: Path, share: float = MIXED_SEARCH_SHARE
) -> Path:
    """A wrk script sending each request to a URL chosen at random: a search with
    probability `share`, else an unsearched page."""
    script = directory / "mixed.lua"

    def table(paths: list[str]) -> str:
        return "{\n" + ",\n".join(json.dumps(path) for path in paths) + "\n}"  # JSON is Lua

    script.write_text(
        f"local browse = {table(browse)}\n"
        f"local search = {table(search)}\n"
        "math.randomseed(os.time())\n"
        "request = function()\n"
        f"  local paths = math.random() < {share} and search or browse\n"
        "  return wrk.format(nil, paths[math.random(#paths)])\n"
        "end\n"
    )
    return script


def report(
    results: list[Result],
    bare: tuple[float, float | None],
    args: argparse.Namespace,
    loads: tuple[str, str],
) -> bool:
    """The table, and the targets; `bare` is the bare endpoint's req/s and CPU ms per
    request (None where /proc could not be read)."""
    bare_rps, bare_cpu = bare
    say("")
    say(
        f"{args.connections} connections, {args.threads} wrk threads, {args.duration:g} s per URL "
        f"after {args.warmup:g} s warm-up"
        f"{f' (median of {args.rounds} rounds)' if args.rounds > 1 else ''}; "
        f"{args.workers} gunicorn sync workers each; "
        f"{machine()}; {date.today().isoformat()}; load average {loads[0]} before, "
        f"{loads[1]} after"
    )
    say("")
    header = f"| {'endpoint':<40} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
    header += f"{'non-2xx':>7} | {'% of bare':>9} | {'CPU ms/req':>10} | {'% of bare CPU':>13} |"
    say(header)
    say("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for r in results:
        if r.skipped or not r.samples:
            say(f"| {r.name:<40} | {'skipped: ' + (r.skipped or 'not run'):<52} |")
            continue
        share = f"{100 * r.rps / bare_rps:.1f}%" if bare_rps else "-"
        cpu = f"{r.cpu_ms:.2f}" if r.cpu_ms else "-"
        cpu_share = f"{100 * bare_cpu / r.cpu_ms:.1f}%" if bare_cpu and r.cpu_ms else "-"
        say(
            f"| {r.name:<40} | {r.rps:8.1f} | {r.p50_ms:7.1f} | {r.p99_ms:7.1f} | "
            f"{r.failures:7d} | {share:>9} | {cpu:>10} | {cpu_share:>13} |"
        )

    split = [r for r in results if r.cpu_ms and r.key in ("bare", "uncached", "mixed")]
    if split:
        say("")
        say("Serving CPU per request by part, ms (medians): server processes, database, Redis")
        for r in {r.key: r for r in reversed(split)}.values():  # bare: its first row
            parts = [r.cpu_part_ms(p) for p in ("server", "database", "redis")]
            say(f"  {r.name:<40} " + "  ".join(f"{p or 0.0:5.2f}" for p in parts))

    measured = [r for r in results if r.samples and not r.skipped]
    keyed = {r.key: r for r in results}
    page1, deep, search = keyed["page1"], keyed["deep"], keyed["search"]
    reference = keyed["reference"]
    if reference.samples and page1.samples and not (reference.skipped or page1.skipped):
        say("")
        say(
            f"/items page 1 (signed in, every feature and middleware) runs at "
            f"{page1.rps / reference.rps:.0%} of the hand-written reference page's req/s."
        )
    uncached = keyed["uncached"]
    if uncached.samples and not uncached.skipped and bare_rps and page1.samples:
        say(
            f"With the table-region cache off (TABLE_CACHE_TTL=0: every view queries and "
            f"renders) it runs at {uncached.rps / bare_rps:.1%} of bare, "
            f"{uncached.rps / page1.rps:.0%} of the cached page."
        )
    checks: list[tuple[str, bool | None, str]] = []
    for label, row, floor in (
        ("/items page 1", page1, PAGE1_MIN_SHARE),
        ("first render (region cache off)", uncached, FIRST_RENDER_MIN_SHARE),
        ("mixed browsing", keyed["mixed"], MIXED_MIN_SHARE),
    ):
        if row.samples and not row.skipped and bare_rps:
            share = row.rps / bare_rps
            detail = f"{share:.1%}"
            if bare_cpu and row.cpu_ms:  # what a machine of its own would see (bench/cpu.py)
                detail += f" (by serving CPU per request: {bare_cpu / row.cpu_ms:.1%})"
            checks.append((f"{label} >= {floor:.0%} of bare req/s", share >= floor, detail))
    for label, row, limit in (
        (f"deep page p99 <= {DEEP_MAX_P99}x page 1 p99", deep, DEEP_MAX_P99),
        (f"search p99 <= {SEARCH_MAX_P99:g}x page 1 p99", search, SEARCH_MAX_P99),
    ):
        if row.skipped or page1.skipped or not (row.samples and page1.samples and page1.p99_ms):
            checks.append((label, None, "not measured"))
            continue
        ratio = row.p99_ms / page1.p99_ms
        checks.append((label, ratio <= limit, f"{ratio:.2f}x"))
    # The OFFSET row is there for transparency (no link leads to it), the reference page is
    # a yardstick: both are reported above but do not count here.
    counted = [r for r in measured if r.key not in ("offset", "reference")]
    failures = sum(r.failures for r in counted)
    skipped = [r.name for r in results if r.skipped]
    note = f"{failures} over {sum(r.requests for r in counted):,} requests"
    if skipped:
        note += f"; not measured: {', '.join(skipped)}"
    checks.append(("no non-2xx responses under load", failures == 0, note))

    say("")
    say("Targets:")
    ok = True
    for label, passed, detail in checks:
        verdict = "n/a " if passed is None else ("PASS" if passed else "MISS")
        ok = ok and passed is not False
        say(f"  {verdict}  {label:<42} {detail}")
    return ok


def cpu_reader(
    admin_url: str, database_url: str, redis_url: str | None
) -> Callable[[int], Callable[[], Reading] | None]:
    """For a server's process group, a function reading the CPU seconds the serving side
    (that server, the bench database's backends, Redis) has spent so far; None where
    /proc cannot be read (not Linux), and then no CPU column is printed."""
    if not ServingCPU.available():
        return lambda _pgid: None
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")

    def backends() -> list[int]:
        with _pg_connect(admin_url) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    cpu = ServingCPU(backends, redis_pid(redis_url))
    return lambda pgid: lambda: cpu.read(pgid)


def stage_breakdown(
    database_url: str, redis_url: str | None, args: argparse.Namespace, deep: int
) -> None:
    """Where a signed-in request's CPU time goes, per stage (bench/request_cost.py, in its
    own process: the app built in-process, region cache off, timing hooks around it)."""
    say("")
    command = [sys.executable, str(ROOT / "bench" / "request_cost.py"), "--stages-only"]
    command += ["--database-url", database_url, "--deep-page", str(deep), "--email", args.email]
    command += ["--requests", str(args.stage_requests)]
    command += ["--redis-url", redis_url] if redis_url else ["--no-redis"]
    subprocess.run(command, cwd=ROOT, check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="an already seeded database (skips seeding)")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--keep", action="store_true", help="keep the database this run creates")
    parser.add_argument("--items", type=int, default=1_000_000, help="items to seed")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per URL")
    parser.add_argument("--quick", action="store_true", help="5 s per URL (2 s warm-up)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per URL")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the whole sequence; medians are reported"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    parser.add_argument("--deep-page", type=int, default=20_000)
    parser.add_argument("--search", default="falcon")
    parser.add_argument("--email", default=EMAIL, help="the demo account to sign in as")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="the cache's L2 (keys under a unique prefix, deleted afterwards)",
    )
    parser.add_argument("--no-redis", action="store_true", help="L1 cache only (per worker)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--stage-requests", type=int, default=200, help="requests per page in the stage split"
    )
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage split")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        help="load only these rows, beside the bare endpoint (keys: " + ", ".join(KEYS) + ")",
    )
    parser.add_argument(
        "--mixed-search-share",
        type=float,
        default=MIXED_SEARCH_SHARE,
        help="share of mixed-browsing requests that search (0-1)",
    )
    parser.add_argument(
        "--mixed-warmup",
        type=float,
        help="seconds of warm-up before mixed browsing, its caches' steady state (20; 10 quick)",
    )
    args = parser.parse_args(argv)
    if args.only and not args.only <= set(KEYS):
        parser.error(
            f"--only takes {', '.join(KEYS)}, not {', '.join(sorted(args.only - set(KEYS)))}"
        )
    if args.quick:
        args.duration, args.warmup = 5.0, 2.0
    if args.mixed_warmup is None:
        args.mixed_warmup = 10.0 if args.quick else 20.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    prefix = f"bench-{uuid.uuid4()}"
    redis_url = None if args.no_redis else args.redis_url
    app_port, bare_port = free_port(), free_port()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tables-")))
        (tmp / "instance").mkdir()
        env = {
            **os.environ,
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "INSTANCE_PATH": str(tmp / "instance"),
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(args.workers),
            "GUNICORN_WORKER_CLASS": "sync",
            "GUNICORN_THREADS": "1",  # gunicorn runs gthread instead of sync when threads > 1
            "REDIS_KEY_PREFIX": prefix,
            "QUEUE_PREFIX": prefix,
            "PUBLIC_URL": f"http://127.0.0.1:{app_port}",  # production insists on one
        }
        for name in ("REDIS_URL", "RABBITMQ_URL", "SMTP_URL", "DATABASE_URL"):
            env.pop(name, None)
        if redis_url:
            env["REDIS_URL"] = redis_url
            stack.callback(
                lambda: say(
                    f"Deleted {delete_redis_keys(redis_url, prefix)} Redis keys under {prefix}:"
                )
            )
        database_url = stack.enter_context(bench_database(args, env))
        total = item_count(database_url)
        if total < 2 * PER_PAGE:
            sys.exit(f"{database_url} has {total} items; seed it first (flask seed --items N)")
        pages = -(-total // PER_PAGE)
        deep = min(args.deep_page, pages - 1)

        app_env = {**env, "DATABASE_URL": database_url}
        app_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "metrics-app")
        bare_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics-bare")}
        groups: dict[str, int] = {}  # base URL -> process group, for CPU time
        app_base = stack.enter_context(
            gunicorn("app:create_app()", app_env, tmp / "app.log", app_port, groups)
        )
        bare_base = stack.enter_context(
            gunicorn("bench.bare_app:app", bare_env, tmp / "bare.log", bare_port, groups)
        )
        reference_env = {**app_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics-ref")}
        reference_base = stack.enter_context(
            gunicorn("bench.reference_app:app", reference_env, tmp / "ref.log", free_port(), groups)
        )
        # The same app with the table-region cache off: what a page costs when rendered
        # (the first view of a state, or right after a write).
        uncached_env = {
            **app_env,
            "TABLE_CACHE_TTL": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics-uncached"),
        }
        uncached_base = stack.enter_context(
            gunicorn("app:create_app()", uncached_env, tmp / "uncached.log", free_port(), groups)
        )
        say(
            f"Serving the app at {app_base} and the bare endpoint at {bare_base} "
            f"({args.workers} sync workers each); {total:,} items, {pages:,} pages; "
            f"Redis L2: {'off' if not redis_url else f'{redis_url} prefix {prefix}'}"
        )

        session = {"Cookie": f"session={web_login(app_base, args.email)}"}
        token = api_login(app_base, args.email)
        status, page_one = fetch(f"{app_base}/items", session)
        if status != 200:
            raise RuntimeError(f"/items answered {status} while signed in")
        deep_url, deep_first_id = deep_page_url(database_url, deep)
        status, deep_html = fetch(app_base + deep_url, session)
        if status != 200 or f'href="/items/{deep_first_id}"' not in deep_html:
            raise RuntimeError(f"the keyset URL for page {deep:,} does not show its first row")

        q = urllib.parse.urlencode({"q": args.search})
        browse, search = mixed_paths()
        results = [
            Result("bare", "bare Flask endpoint (before)", "/"),
            Result("reference", "hand-written table page (reference)", "/"),
            Result("page1", "/items page 1", "/items"),
            Result("uncached", "/items page 1, region cache off", "/items"),
            Result("deep", f"deep page {deep:,} (keyset cursor)", deep_url),
            Result("last", "last page (Last » link)", last_page_url(page_one)),
            Result("offset", f"deep page by offset (no cursor) {deep:,}", f"/items?page={deep}"),
            Result("sorted", "sorted page (name asc)", "/items?sort=name&dir=asc"),
            Result("search", f"search (q={args.search})", f"/items?{q}"),
            Result("api", "GET /api/v1/items", "/api/v1/items"),
            Result(
                "mixed",
                f"mixed browsing ({args.mixed_search_share:.0%} searches)",
                search[0],
                script=mixed_script(browse, search, tmp, args.mixed_search_share),
                warmup=max(args.warmup, args.mixed_warmup),
            ),
            Result("bare", "bare Flask endpoint (after)", "/"),
        ]
        if token is None:
            next(r for r in results if r.key == "api").skipped = "API sign-in failed"
        serving_cpu = cpu_reader(args.admin_url, database_url, redis_url)
        load_before = load_average()
        say(f"\nLoading each URL (1-minute load average now {load_before}):")
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                say(f" round {number} of {args.rounds}")
            for result in results:
                if args.only and result.key not in args.only | {"bare"}:
                    continue  # reported as not run
                base, headers, idle = app_base, session, "/healthz"
                if result.key == "bare":
                    base, headers, idle = bare_base, {}, "/"
                elif result.key == "reference":
                    base, headers, idle = reference_base, {}, "/"
                elif result.key == "uncached":
                    base = uncached_base
                elif result.key == "api":
                    headers = {"Authorization": f"Bearer {token}"}
                measure(result, base, headers, idle, args, serving_cpu(groups[base]))

        bares = [r for r in results if r.key == "bare" and r.samples]
        bare_cpus = [r.cpu_ms for r in bares if r.cpu_ms]
        bare = (
            statistics.fmean(r.rps for r in bares) if bares else 0.0,
            statistics.fmean(bare_cpus) if bare_cpus else None,
        )
        ok = report(results, bare, args, (load_before, load_average()))
        say(f"\nDeep page = page {deep:,}: {deep_url}")
        say(
            "The OFFSET row is for transparency (no link leads there) and is not in the error "
            "target; its latencies count only the requests that finished within the run."
        )
        if not args.no_stages:
            stage_breakdown(database_url, redis_url, args, deep)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
