"""The web user import as a job: `job.user_import` messages run `execute_import`.

The same code runs under the embedded runner and RQ workers. It is idempotent:
a redelivered message finds its run finished (or running elsewhere, and is
retried later) and imports nothing twice; see app/services/imports.py.
"""

from __future__ import annotations

import logging

from app.extensions import db
from app.services import imports
from app.services.outbox import Message
from app.settings import get_settings

log = logging.getLogger(__name__)


def run_user_import(message: Message, *, retry_in: float | None) -> None:
    """Import the CSV of the message's ImportRun (ImportBusy: another job has it; retried)."""
    run_id = int(message.payload["import_run_id"])
    run = imports.execute_import(db.session, run_id, uploads=get_settings().uploads_path)
    if run is None:
        log.info("import %s: already finished, nothing to do (message %s)", run_id, message.id)
    else:
        log.info(
            "import %s %s: %s imported, %s rejected", run.id, run.state, run.imported, run.rejected
        )
