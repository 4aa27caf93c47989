"""Data access for the audit log (append-only)."""

from __future__ import annotations

from app.models.audit import AuditLog
from app.repositories.base import BaseRepository


class AuditRepository(BaseRepository[AuditLog]):
    """Audit rows; newest first by default."""

    model = AuditLog
    sortable = {
        "id": AuditLog.id,
        "created_at": AuditLog.created_at,
        "event_type": AuditLog.event_type,
    }
    filterable = {"event_type": AuditLog.event_type, "actor_id": AuditLog.actor_id}
    searchable = (AuditLog.actor_email, AuditLog.subject_id)
    default_sort = "created_at"
    default_direction = "desc"
