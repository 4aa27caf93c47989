"""The alert rules and the dashboard in ops/ are valid PromQL, and the alerts fire when they
should (promtool's unit tests in ops/prometheus/alerts_test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REQUIRE_SERVICES
from tests.ops.promql import (
    ALERT_TESTS,
    ALERTS,
    ROOT,
    alert_rules,
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    metric_names,
    variable_queries,
)

REQUIRED_ALERTS = {
    "LedgerlyHigh5xxRatio",
    "LedgerlyHighLatencyP95",
    "LedgerlyBackingServiceDown",
    "LedgerlyOutboxLagging",
    "LedgerlyDeadLetters",
    "LedgerlyWebhookEndpointDisabled",
    "LedgerlyPaymentOutcomesUnknown",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing (apt-get install prometheus; `make test` does it as root)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " but REQUIRE_SERVICES=1")
        pytest.skip(message)
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_every_alert_passes_its_promtool_unit_tests(promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == {rule["alert"] for rule in alert_rules()}, "an alert is never seen firing"


def test_a_broken_threshold_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: move one threshold and promtool says so."""
    rules = ALERTS.read_text().replace("> 60\n", "> 600\n")
    assert rules != ALERTS.read_text()
    (tmp_path / "alerts.yml").write_text(rules)
    shutil.copy(ALERT_TESTS, tmp_path / "alerts_test.yml")
    result = _run(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "LedgerlyOutboxLagging" in result.stdout + result.stderr


def test_the_example_scrape_config_is_valid_and_loads_the_rules(promtool: str) -> None:
    config = ROOT / "ops" / "prometheus" / "prometheus.yml"
    result = _run(promtool, "check", "config", "--syntax-only", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = yaml.safe_load(config.read_text())
    assert (config.parent / loaded["rule_files"][0]).resolve() == ALERTS.resolve()


def test_the_required_alerts_exist_each_with_summary_description_and_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == REQUIRED_ALERTS
    for rule in rules:
        notes = rule["annotations"]
        assert {"summary", "description", "runbook"} <= notes.keys(), rule["alert"]
        assert all(len(notes[k].strip()) > 20 for k in ("summary", "description", "runbook"))
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (with Grafana's variables filled in) as a recording rule."""
    exprs = dashboard_exprs() + variable_queries()
    records = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    titles = [panel["title"] for panel in dashboard_panels()]
    for wanted in (
        "Requests per second",
        "Latency p50",
        "Latency p95",
        "Latency p99",
        "5xx ratio",
        "503s by cause",
        "Cache hit ratio by tier",
        "Outbox lag",
        "Queue depths and dead letters",
        "Job runs and failures",
        "Webhook success rate",
        "Payments by status and provider",
        "Unknown payment outcomes",
    ):
        assert any(title.startswith(wanted) for title in titles), wanted
    for panel in dashboard_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), (panel["title"], target["expr"])
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(flask_http_request_duration_seconds_bucket{job=~"$job",route!="/metrics"}'
        "[$__rate_interval]))) > 0.5 and on() "
        "max(app_outbox_dead offset 5m) > 0 or sum(increase(app_dead_letters_total[15m])) > 15 * 60"
    )
    assert metric_names(expr) == {
        "flask_http_request_duration_seconds_bucket",
        "app_outbox_dead",
        "app_dead_letters_total",
    }
    assert metric_names('up{job="x"} == 0 unless absent(foo_total)') == {"up", "foo_total"}
