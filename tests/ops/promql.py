"""What the dashboard and the alert rules in ops/ ask Prometheus for: their expressions and
the metric names in them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "ledgerly.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "ops" / "prometheus" / "alerts_test.yml"

# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$job": ".*",
    "$route": ".*",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
    | {"group_left", "group_right", "atan2"}
)


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords and labels left out)."""
    expr = _STRING.sub('""', substitute(expr))
    expr = _MATCHERS.sub("", expr)
    expr = _RANGE.sub("", expr)
    expr = _GROUPING.sub("", expr)
    return {m for m in _IDENTIFIER.findall(expr) if m.lower() not in _KEYWORDS}


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of ops/prometheus/alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> Iterator[dict[str, Any]]:
    """Every panel that draws something (rows left out), nested ones included."""
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard, as Prometheus receives it."""
    exprs = [t["expr"] for panel in dashboard_panels() for t in panel["targets"]]
    return [substitute(e) for e in exprs]


def variable_queries() -> list[str]:
    """The metric selectors inside the dashboard's `label_values(...)` variables."""
    out = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else None
        if variable["type"] == "query" and text:
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            assert found, f"unexpected variable query {text!r}"
            out.append(substitute(found.group(1)))
    return out


def substitute(expr: str) -> str:
    """The expression with Grafana's variables replaced as Grafana would."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def names_used() -> dict[str, set[str]]:
    """Metric name -> where it is used ("alert X", "panel Y", "variable")."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for panel in dashboard_panels():
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                used.setdefault(name, set()).add(f"panel {panel['title']!r}")
    for selector in variable_queries():
        for name in metric_names(selector):
            used.setdefault(name, set()).add("dashboard variable")
    return used
