"""/metrics cannot be grown by strangers: no label takes a value a client can invent."""

from __future__ import annotations

from collections import defaultdict

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.prometheus import OTHER_METHOD

Series = dict[str, set[tuple[tuple[str, str], ...]]]


def _series(client: FlaskClient) -> Series:
    """Every series on /metrics by family: its labels (histogram buckets folded in)."""
    text = client.get("/metrics").get_data(as_text=True)
    out: Series = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            out[family.name].add(labels)
    return out


def test_fifty_invented_methods_add_at_most_one_series(client: FlaskClient) -> None:
    client.get("/login")
    before = _series(client)
    invented = [f"X{n}" for n in range(45)] + ["get", "PROPFIND", "TRACE", "CONNECT", "BREW"]
    for method in invented:
        response = client.open("/login", method=method)
        assert response.status_code == 405, method  # as before: /login takes GET and POST
        assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))
    after = _series(client)
    grown = {name: after[name] - before.get(name, set()) for name in after}
    grown = {name: new for name, new in grown.items() if new}
    assert "flask_http_request" in grown, "the requests were not counted at all"
    for name, new in grown.items():
        assert len(new) == 1, (name, new)
        (labels,) = new
        assert dict(labels).get("method") == OTHER_METHOD, (name, labels)
    counted = {dict(labels).get("method") for labels in after["flask_http_request"]}
    assert not counted & set(invented)
