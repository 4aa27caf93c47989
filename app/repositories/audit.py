"""Data access for the audit log (append-only)."""

from __future__ import annotations

from app.models.audit import AUDIT_LISTING, AuditLog
from app.repositories.base import BaseRepository


class AuditRepository(BaseRepository[AuditLog]):
    """Audit rows, listed as AUDIT_LISTING declares (newest first)."""

    model = AuditLog
    listing = AUDIT_LISTING
