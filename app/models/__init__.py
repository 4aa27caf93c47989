"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.audit import AuditLog
from app.models.base import Base
from app.models.item import ITEM_STATUSES, Item
from app.models.user import ROLES, User

__all__ = ["ITEM_STATUSES", "ROLES", "AuditLog", "Base", "Item", "User"]
