"""Deliver one webhook attempt: sign it, send it past the SSRF guard, record what happened.

Delivery failures are not exceptions here: the attempt is stored and the next one
is scheduled through the outbox (app/services/webhooks.py), so Retry-After and the
long schedule hold in both modes. Only an unexpected error (the database gone) raises.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from urllib3.exceptions import HTTPError

from app.core.metrics import WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_DELIVERIES
from app.core.netguard import ForbiddenTarget, Resolver, post, system_resolver
from app.extensions import db
from app.models.base import utcnow
from app.services import webhooks
from app.services.outbox import Message
from app.services.webhooks import Due, Outcome
from app.settings import get_settings

TIMEOUT_SECONDS = 15.0
resolver: Resolver = system_resolver  # tests swap it to fake DNS (rebinding)


def deliver_webhook(message: Message, *, retry_in: float | None = None) -> None:
    """Make the attempt a `webhook.deliver` message asks for."""
    now = utcnow()
    with db.transaction() as session:
        due = webhooks.start_attempt(
            session,
            str(message.payload["webhook_message_id"]),
            int(message.payload["delivery_id"]),
            now=now,
        )
    if due is None:
        return
    outcome = attempt(due)
    with db.transaction() as session:
        result = webhooks.record_attempt(session, due, outcome, now=utcnow())
    WEBHOOK_DELIVERIES.labels(outcome=result).inc()


def attempt(due: Due) -> Outcome:
    """One signed POST; an error never raises, it is the outcome."""
    settings = get_settings()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Ledgerly-Webhooks/1",
        "webhook-id": due.message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(
            sign(s, due.message_id, timestamp, due.body) for s in due.secrets
        ),
    }
    started = time.perf_counter()
    try:
        target = settings.webhook_rules(resolver).check(due.url)
        reply = post(target, due.body.encode(), headers, timeout=TIMEOUT_SECONDS)
    except ForbiddenTarget as exc:
        return Outcome(error=f"refused: {exc}")
    except (HTTPError, OSError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", duration_ms=_ms(started))
    finally:
        WEBHOOK_ATTEMPT_SECONDS.observe(time.perf_counter() - started)
    return Outcome(reply.status, reply.excerpt, reply.headers, duration_ms=reply.duration_ms)


def sign(secret: str, message_id: str, timestamp: str, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
