"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.audit import AuditLog
from app.models.base import Base
from app.models.imports import ImportRun
from app.models.item import ITEM_STATUSES, Item
from app.models.messaging import Delivery, OutboxMessage, ProcessedMessage
from app.models.payment import Payment, PaymentEvent, PaymentTransaction
from app.models.user import ROLES, User
from app.models.webhooks import WebhookAttempt, WebhookEndpoint, WebhookMessage

__all__ = [
    "ITEM_STATUSES",
    "ROLES",
    "AuditLog",
    "Base",
    "Delivery",
    "ImportRun",
    "Item",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "PaymentTransaction",
    "ProcessedMessage",
    "User",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
