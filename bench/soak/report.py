"""Per-phase figures and the issue's pass/fail rules, from the requests locust recorded."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PAGE_P95_TARGET_MS = 500.0  # issue 18: pages stay fast while sign-ins run
RSS_GROWTH_LIMIT = 0.10
RECOVERY_S = 2.0  # every request started this long after recovery must succeed


@dataclass(frozen=True)
class Request:
    """One request as locust saw it (status 0: no answer at all)."""

    t: float
    ms: float
    status: int
    name: str
    kind: str
    created: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    def met(self, outages: Iterable[Outage]) -> bool:
        """Whether this request was in flight while a service was down (or recovering)."""
        return any(
            self.t <= o.end + RECOVERY_S and self.t + self.ms / 1000 >= o.start for o in outages
        )


@dataclass(frozen=True)
class Outage:
    """When the fault began and when the service answered again."""

    start: float
    end: float


@dataclass
class Phase:
    """One phase's window, what was done to the stack, and what it measured."""

    name: str
    start: float
    end: float
    restart_free: bool
    outage: Outage | None = None
    rss_mb: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average at the end (other work included)
    note: str = ""
    requests: list[Request] = field(default_factory=list)


def load(path: Path) -> list[Request]:
    """Read the JSON lines the locustfile wrote."""
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out.append(Request(r["t"], r["ms"], r["s"], r["n"], r.get("k", "page"), r.get("c")))
    return out


def assign(phases: list[Phase], requests: Iterable[Request]) -> None:
    """Give each phase the requests that started inside its window."""
    for r in requests:
        for p in phases:
            if p.start <= r.t < p.end:
                p.requests.append(r)
                break


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass(frozen=True)
class Writes:
    """Creates answered as done, rows found for them, rows applied twice, answered but missing."""

    answered: int
    rows: int
    duplicates: int
    lost: int


def writes(phase: Phase, rows_by_name: Counter[str]) -> Writes:
    """Compare the creates this phase sent with the rows the database holds."""
    sent = [r for r in phase.requests if r.created]
    answered = [r.created for r in sent if r.ok and r.created]
    rows = sum(rows_by_name[r.created] for r in sent if r.created)
    dups = sum(1 for r in sent if r.created and rows_by_name[r.created] > 1)
    lost = sum(1 for name in answered if rows_by_name[name] == 0)
    return Writes(len(answered), rows, dups, lost)


def checks(
    phase: Phase, w: Writes, baseline_rss: float, outages: Iterable[Outage] = ()
) -> list[tuple[str, bool]]:
    """The issue's rules for this phase, each with whether it held.

    A request "met" an outage when it was in flight between the fault and 2 s after the
    service answered again (any phase's outage: a slow request can outlive its phase).
    """
    outages = [*outages, *([phase.outage] if phase.outage else [])]
    reqs = phase.requests
    calm = [r for r in reqs if not r.met(outages)]
    other_5xx = sum(1 for r in reqs if r.status >= 500 and r.status != 503)
    result = [("no 5xx other than 503", other_5xx == 0)]
    if phase.restart_free:
        result.append(("no 5xx at all, no request dropped", all(r.ok for r in calm)))
    result.append(("503 only while down", all(r.met(outages) for r in reqs if r.status == 503)))
    if phase.outage is not None:
        result.append(("all succeed from 2 s after recovery", all(r.ok for r in calm)))
    result.append(("no write applied twice or lost", w.duplicates == 0 and w.lost == 0))
    if phase.name == "baseline":
        pages = [r.ms for r in reqs if r.kind == "page"]
        result.append((f"page p95 < {PAGE_P95_TARGET_MS:.0f} ms", pct(pages, 95) < 500))
    elif baseline_rss:
        result.append(("worker RSS < +10%", phase.rss_mb < baseline_rss * (1 + RSS_GROWTH_LIMIT)))
    return result


HEADER = (
    "| phase | requests | 5xx | 503 | not 2xx/3xx | p50 ms | p95 ms | p99 ms | page p95 | "
    "sign-in p95 | creates ok / rows / dup | worker RSS MB | load | result |"
)


def table(phases: list[Phase], rows_by_name: Counter[str]) -> tuple[list[str], bool]:
    """The printed table, the failed checks below it, and whether every phase passed."""
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    notes: list[str] = []
    baseline_rss = phases[0].rss_mb if phases and phases[0].name == "baseline" else 0.0
    passed = True
    for p in phases:
        reqs, w = p.requests, writes(p, rows_by_name)
        times = [r.ms for r in reqs]
        pages = [r.ms for r in reqs if r.kind == "page"]
        signins = [r.ms for r in reqs if r.kind == "signin"]
        results = checks(p, w, baseline_rss, [q.outage for q in phases if q.outage])
        ok = all(held for _, held in results)
        passed &= ok
        growth = f" ({(p.rss_mb / baseline_rss - 1) * 100:+.1f}%)" if baseline_rss else ""
        lines.append(
            f"| {p.name} | {len(reqs)} | {sum(r.status >= 500 for r in reqs)} "
            f"| {sum(r.status == 503 for r in reqs)} | {sum(not r.ok for r in reqs)} "
            f"| {pct(times, 50):.0f} | {pct(times, 95):.0f} | {pct(times, 99):.0f} "
            f"| {pct(pages, 95):.0f} | {pct(signins, 95):.0f} "
            f"| {w.answered} / {w.rows} / {w.duplicates} | {p.rss_mb:.1f}{growth} "
            f"| {p.load:.1f} | {'PASS' if ok else 'FAIL'} |"
        )
        notes += [f"{p.name}: FAIL {label}" for label, held in results if not held]
        if p.note:
            notes.append(f"{p.name}: {p.note}")
    return [*lines, "", *notes], passed


def failures(phase: Phase) -> list[str]:
    """What did not succeed in a phase, by status and request name, for the log."""
    counts = Counter(f"{r.status} {r.name}" for r in phase.requests if not r.ok)
    return [f"{n} x {what}" for what, n in counts.most_common(12)]
