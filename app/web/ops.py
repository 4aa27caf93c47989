"""Operations endpoints: liveness and readiness (metrics are mounted by app.core.prometheus)."""

from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify

from app.caching import cache_health
from app.extensions import csrf, db
from app.policy import policy
from app.readiness import check_services
from app.services import outbox
from app.settings import Settings, get_settings

LAG_WARNING_SECONDS = 60.0

bp = Blueprint("ops", __name__)
csrf.exempt(bp)


@bp.get("/healthz")
@policy("public")
def healthz() -> Response:
    """The process is alive and serving requests."""
    return jsonify(status="ok")


def draining(settings: Settings) -> bool:
    """The process is shutting down (gunicorn.conf.py): take it out of the load balancer."""
    flag = settings.drain_flag_file
    return flag is not None and os.path.exists(flag)  # noqa: PTH110 - a stat per probe, no Path


def _outbox_lag() -> dict[str, object]:
    """How far the relay (or the embedded runner) is behind; reported, not a readiness rule:
    a slow broker must not take the web out of the load balancer."""
    found = outbox.backlog(db.session)
    return {
        "pending": found.pending,
        "oldest_age_seconds": round(found.oldest_age_seconds, 1),
        "dead": found.dead,
        "lagging": found.oldest_age_seconds > LAG_WARNING_SECONDS,
    }


@bp.get("/readyz")
@policy("public")
def readyz() -> Response:
    """Each backing service's state; 503 when a configured one is down."""
    settings = get_settings()
    if draining(settings):
        response = jsonify(status="draining")
        response.status_code = 503
        response.headers["Cache-Control"] = "no-store"
        return response
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    checks = check_services(app)
    ready = all(c.state != "down" for c in checks.values())
    response = jsonify(
        status="ready" if ready else "unavailable",
        checks={name: c.as_dict() for name, c in checks.items()},
        cache=cache_health(app),
        outbox=_outbox_lag() if checks["database"].state == "up" else None,
    )
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
