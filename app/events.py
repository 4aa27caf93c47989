"""Subscribe the app's event handlers and middleware to the process-wide EventBus."""

from __future__ import annotations

from flask import Flask

from app.core.events import Event, EventBus
from app.core.metrics import EVENTS_PUBLISHED
from app.extensions import db
from app.services.audit import AuditHandler


def count_event(event: Event) -> Event:
    """Bus middleware: count every published event by type."""
    EVENTS_PUBLISHED.labels(type=event.type.value).inc()
    return event


def register_event_handlers(app: Flask) -> None:
    """Handlers find the current app's session at call time, so one set serves every app."""
    bus = EventBus.get_instance()
    bus.subscribe(AuditHandler(session=lambda: db.session))
    if count_event not in bus.middleware:
        bus.add_middleware(count_event)
    app.extensions["event_bus"] = bus
