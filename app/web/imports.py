"""Admin user import: upload a CSV, watch it run as a job, read its rejects.

The upload is checked in the request (422 with the reason, nothing started); a
usable file becomes an ImportRun and a `job.user_import` message in one
transaction, and the browser goes to the run's page, whose progress fragment
polls every second until the run is finished. The job goes on without the
browser; the list shows every recent run and its state.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, send_file, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.htmx import render
from app.models.imports import ImportRun
from app.policy import policy
from app.security import current_actor
from app.services import imports
from app.settings import get_settings
from app.web.responses import see_other

bp = Blueprint("imports", __name__, url_prefix="/admin/imports")

FORM_OVERHEAD = 64 * 1024  # the multipart envelope, the CSRF token and the checkbox


@bp.url_value_preprocessor
def _allow_the_upload_size(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """The upload may be larger than other requests (this runs before the CSRF check reads
    the form, so the limit applies to that read too)."""
    if endpoint == "imports.upload":
        request.max_content_length = imports.MAX_UPLOAD_BYTES + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    return _index_page({"file": imports.too_big_message()}, status=422)


@bp.get("")
@policy("admin")
def index() -> Response:
    """The upload form and the recent imports with their state."""
    return _index_page({})


@bp.post("")
@policy("admin")
def upload() -> Response:
    """Check the file and queue its import (422 and nothing started if it is unusable)."""
    upload = request.files.get("file")
    try:
        with db.transaction() as session:
            run = imports.start_import(
                session,
                uploads=get_settings().uploads_path,
                stream=upload.stream if upload else None,
                filename=(upload.filename or "") if upload else "",
                send_welcome=request.form.get("send_welcome") in ("1", "on", "true"),
                actor=current_actor(),
            )
    except ValidationFailed as exc:
        return _index_page(exc.fields, status=422)
    return see_other(url_for("imports.show", run_id=run.id))


def _index_page(errors: dict[str, str], *, status: int = 200) -> Response:
    return render(
        "admin/imports.html",
        fragments={"import-form": "import_form"},
        status=status,
        runs=imports.recent_runs(db.session),
        errors=errors,
        max_mb=imports.MAX_UPLOAD_BYTES // (1024 * 1024),
    )


@bp.get("/<int:run_id>")
@policy("admin")
def show(run_id: int) -> Response:
    """One import: live progress while it runs (polled), the outcome and rejects after."""
    run = imports.get_run(db.session, run_id)
    finished = run.state in imports.FINISHED
    rejects = imports.read_rejects(get_settings().uploads_path, run) if finished else []
    return render(
        "admin/import.html",
        fragments={"import-progress": "import_progress"},
        out_of_band=("import_announce", "import_outcome") if finished else (),
        run=run,
        finished=finished,
        percent=percent(run),
        rejects=rejects,
        rejects_shown=imports.REJECTS_SHOWN,
    )


@bp.get("/<int:run_id>/rejects.csv")
@policy("admin")
def rejects(run_id: int) -> Response:
    """The rejected rows with their reasons, as the CSV the job wrote."""
    run = imports.get_run(db.session, run_id)
    path = imports.rejects_path(get_settings().uploads_path, run)
    if run.state not in imports.FINISHED or not path.exists():
        raise NotFound("This import has no rejects file yet.")
    stem = run.filename.rsplit(".", 1)[0] or "import"
    response = send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"{stem}-rejects.csv",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def percent(run: ImportRun) -> int:
    """How far the run is, 0-100 (a finished run is 100 whatever it read)."""
    if run.state == "done":
        return 100
    if not run.rows_total:
        return 0
    return min(100, run.rows_read * 100 // run.rows_total)
