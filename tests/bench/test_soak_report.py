"""The soak's verdicts (bench/soak/report.py): each rule of issue 13 fails when it should."""

from __future__ import annotations

from collections import Counter

from bench.soak.report import Outage, Phase, Request, assign, checks, pct, table, writes


def _req(
    t: float, status: int = 200, *, kind: str = "page", ms: float = 50.0, created: str | None = None
) -> Request:
    return Request(t=t, ms=ms, status=status, name="GET /items", kind=kind, created=created)


def _verdicts(
    phase: Phase, rows: Counter[str] | None = None, baseline_rss: float = 100.0
) -> dict[str, bool]:
    return dict(checks(phase, writes(phase, rows or Counter()), baseline_rss))


def test_a_calm_baseline_passes_and_any_5xx_fails_it() -> None:
    phase = Phase("baseline", 0, 120, restart_free=True, requests=[_req(t) for t in range(100)])
    assert all(_verdicts(phase).values())
    phase.requests.append(_req(50, 503))
    assert not _verdicts(phase)["no 5xx at all, no request dropped"]


def test_a_dropped_request_fails_a_restart_free_phase() -> None:
    phase = Phase("sigterm-drain", 0, 120, restart_free=True, requests=[_req(1), _req(2, 0)])
    assert not _verdicts(phase)["no 5xx at all, no request dropped"]


def test_503_only_inside_the_outage_and_success_two_seconds_after() -> None:
    outage = Outage(start=30, end=50)
    inside = [_req(t, 503) for t in (30, 40, 51.5)]
    phase = Phase(
        "pg-stop", 0, 120, restart_free=False, outage=outage, requests=[*inside, _req(60)]
    )
    verdicts = _verdicts(phase)
    assert verdicts["503 only while down"] and verdicts["all succeed from 2 s after recovery"]
    phase.requests.append(_req(53, 503))  # 3 s after recovery
    verdicts = _verdicts(phase)
    assert not verdicts["503 only while down"]
    assert not verdicts["all succeed from 2 s after recovery"]


def test_a_500_fails_every_phase_even_during_an_outage() -> None:
    phase = Phase("redis-pause", 0, 120, False, outage=Outage(30, 45), requests=[_req(35, 500)])
    assert not _verdicts(phase)["no 5xx other than 503"]


def test_writes_applied_twice_or_answered_but_missing_fail() -> None:
    sent = [_req(1, 201, kind="write", created="a"), _req(2, 303, kind="write", created="b")]
    phase = Phase("baseline", 0, 120, restart_free=True, requests=sent)
    assert writes(phase, Counter({"a": 1, "b": 1})).duplicates == 0
    assert _verdicts(phase, Counter({"a": 1, "b": 1}))["no write applied twice or lost"]
    assert not _verdicts(phase, Counter({"a": 2, "b": 1}))["no write applied twice or lost"]
    assert not _verdicts(phase, Counter({"a": 1}))["no write applied twice or lost"]


def test_worker_memory_growth_over_ten_percent_fails() -> None:
    phase = Phase("pg-restart", 0, 120, restart_free=False, outage=Outage(30, 31), rss_mb=109.0)
    assert _verdicts(phase, baseline_rss=100.0)["worker RSS < +10%"]
    phase.rss_mb = 111.0
    assert not _verdicts(phase, baseline_rss=100.0)["worker RSS < +10%"]


def test_page_p95_over_500_ms_fails_the_baseline() -> None:
    slow = [_req(t, ms=900.0 if t % 10 == 0 else 50.0) for t in range(100)]
    phase = Phase("baseline", 0, 120, restart_free=True, requests=slow)
    assert not _verdicts(phase)["page p95 < 500 ms"]
    assert pct([r.ms for r in slow], 50) == 50.0


def test_requests_go_to_the_phase_they_started_in_and_the_table_says_fail() -> None:
    phases = [
        Phase("baseline", 0, 10, True),
        Phase("pg-stop", 10, 20, False, outage=Outage(12, 14)),
    ]
    assign(phases, [_req(1), _req(11), _req(19, 500)])
    assert [len(p.requests) for p in phases] == [1, 2]
    lines, passed = table(phases, Counter())
    assert not passed
    assert any(line.startswith("| pg-stop |") and line.endswith("FAIL |") for line in lines)


def test_a_slow_request_that_outlived_its_phase_into_an_outage_may_503() -> None:
    """Started in the baseline, still waiting when Redis paused in the next phase."""
    slow = Request(t=115, ms=10_000, status=503, name="POST /login", kind="signin", created=None)
    baseline = Phase("baseline", 0, 120, restart_free=True, requests=[_req(10), slow])
    pause = Phase("redis-pause", 120, 240, False, outage=Outage(124, 139))
    assert pause.outage is not None
    verdicts = dict(checks(baseline, writes(baseline, Counter()), 0.0, [pause.outage]))
    assert all(verdicts.values())
    verdicts = dict(checks(baseline, writes(baseline, Counter()), 0.0, []))
    assert not verdicts["no 5xx at all, no request dropped"]  # with no outage, it is a failure
