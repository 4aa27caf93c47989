"""Subscribe the app's event handlers and middleware to the process-wide EventBus.

The subscribers of each event type are listed in the catalogue in app/core/events.py.
"""

from __future__ import annotations

from app.core.events import Event, EventBus
from app.core.metrics import EVENTS_PUBLISHED
from app.services.audit import AuditHandler
from app.services.invalidation import CacheInvalidationHandler, watch_commits
from app.services.outbox import OutboxHandler
from app.services.payment_events import PaymentMailHandler
from app.services.webhooks import WebhookHandler


def count_event(event: Event) -> Event:
    """Bus middleware: count every published event by type."""
    EVENTS_PUBLISHED.labels(type=event.type.value).inc()
    return event


def register_event_handlers() -> None:
    """Subscribe once per process; handlers get the publisher's session with each event."""
    bus = EventBus.get_instance()
    bus.subscribe(AuditHandler())
    bus.subscribe(CacheInvalidationHandler())
    bus.subscribe(OutboxHandler())
    bus.subscribe(WebhookHandler())
    bus.subscribe(PaymentMailHandler())
    if count_event not in bus.middleware:
        bus.add_middleware(count_event)
    watch_commits()
