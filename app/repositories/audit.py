"""Data access for the audit log (append-only)."""

from __future__ import annotations

from sqlalchemy import select

from app.models.audit import AUDIT_LISTING, AuditLog
from app.repositories.base import BaseRepository


class AuditRepository(BaseRepository[AuditLog]):
    """Audit rows, listed as AUDIT_LISTING declares (newest first)."""

    model = AuditLog
    listing = AUDIT_LISTING

    def event_types(self) -> list[str]:
        """The event types that have rows, in order."""
        stmt = select(AuditLog.event_type).distinct().order_by(AuditLog.event_type)
        return list(self.session.scalars(stmt))
