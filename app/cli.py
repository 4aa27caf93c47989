"""Command line: `flask --app app db upgrade`, `seed`, `users create`."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.api.openapi import document_text
from app.core import migrations
from app.errors import AppError
from app.extensions import db
from app.jobs.bridge import Bridge
from app.jobs.relay import Relay
from app.jobs.worker import work
from app.models.user import ROLES
from app.payments import get_payment_service
from app.services.csv_source import CsvFile, CsvFileError
from app.services.data_pipeline import Progress
from app.services.payment import iter_pending
from app.services.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo, settle_bulk_load
from app.services.user_import import (
    ImportFailed,
    ImportReport,
    import_users,
    open_rejects,
    open_user_csv,
)
from app.services.users import create_user
from app.settings import get_settings

db_cli = AppGroup("db", help="Database schema migrations (Alembic).")
users_cli = AppGroup("users", help="Manage user accounts.")


def _require_schema() -> None:
    """Stop with a clear message (exit 1) when the database is not migrated to the newest
    schema, instead of a traceback from the first query."""
    if not migrations.is_current(db.engine):
        click.echo(
            "Error: the database schema is missing or out of date. "
            "Run `flask --app app db upgrade` first.",
            err=True,
        )
        sys.exit(1)


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    migrations.upgrade(get_settings().database_url, revision=revision)
    click.echo(f"Database upgraded to {revision}.")


@db_cli.command("downgrade")
@click.option("--revision", default="-1", show_default=True)
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrations.downgrade(get_settings().database_url, revision=revision)
    click.echo(f"Database downgraded to {revision}.")


@click.command("seed")
@with_appcontext
@click.option(
    "--users",
    "users",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Extra demo users beyond the three role accounts.",
)
@click.option(
    "--items",
    "items",
    default=3000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Total items wanted; only the missing ones are added.",
)
def seed(users: int, items: int) -> None:
    """Load demo data (idempotent: a second run adds nothing)."""
    _require_schema()
    settings = get_settings()
    started = time.perf_counter()

    def progress(done: int) -> None:
        click.echo(f"\r  items inserted: {done:,}", nl=False, err=True)

    with db.transaction() as session:
        report = seed_demo(
            session,
            users=users,
            items=items,
            iterations=settings.password_hash_iterations,
            progress=progress,
        )
    if report.items_created:
        click.echo("", err=True)
        settle_bulk_load(db.engine_for(current_app))
    elapsed = time.perf_counter() - started
    click.echo(
        f"Seeded {report.users_created} users and {report.items_created:,} items in {elapsed:.1f}s."
    )
    click.echo("Demo sign-ins (password for all: " + DEMO_PASSWORD + "):")
    for email, _name, role in DEMO_ACCOUNTS:
        click.echo(f"  {role:<6} {email}")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", default="user", show_default=True, type=click.Choice(ROLES))
@click.option("--name", default="")
def users_create(email: str, password: str, role: str, name: str) -> None:
    """Create an account."""
    _require_schema()
    settings = get_settings()
    try:
        with db.transaction() as session:
            user = create_user(
                session,
                email=email,
                name=name,
                role=role,
                password=password,
                iterations=settings.password_hash_iterations,
            )
    except AppError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        click.echo(f"Error: {exc.message}{' (' + details + ')' if details else ''}", err=True)
        sys.exit(1)
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing to the database.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write rejected rows with reasons  [default: FILE.rejects.csv beside FILE]",
)
def users_import(file: Path, dry_run: bool, rejects_path: Path | None) -> None:
    """Import users from FILE, a UTF-8 CSV with columns email,name,role,active.

    Only email is required; role defaults to user, active to true (true/false,
    yes/no, 1/0). Accounts get no password: users set one with "forgot password".
    Rows are committed 100 at a time; bad rows, duplicates and emails already
    registered go to the rejects file (columns row, email, field, reason, then
    the file's other columns). Rows are numbered as a spreadsheet shows them:
    the header is row 1.

    Exit status: 0 when the import ran, even if rows were rejected (the summary
    counts them); 1 when the file is unusable (nothing is changed) or a batch
    failed (the batches before it stay committed, and the summary says which).
    """
    _require_schema()
    rejects_path = rejects_path or file.with_name(f"{file.stem}.rejects.csv")
    try:
        if rejects_path.resolve() == file.resolve():
            raise CsvFileError("The rejects file must not be the file being imported.")
        source = open_user_csv(file)
        report = _run_import(source, rejects_path, dry_run=dry_run)
    except (CsvFileError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except ImportFailed as exc:
        click.echo(f"Error: {exc.report.summary()}", err=True)
        click.echo(f"Rejected rows so far: {rejects_path}", err=True)
        sys.exit(1)
    click.echo(report.summary())
    if report.rejected or report.already_registered:
        click.echo(f"Rejected rows with reasons: {rejects_path}")


def _run_import(source: CsvFile, rejects: Path, *, dry_run: bool) -> ImportReport:
    """Import with a progress bar on stderr, writing rejects as they come."""
    label = f"{'Checking' if dry_run else 'Importing'} {source.data_rows:,} rows"
    bar = click.progressbar(length=source.data_rows, label=label, file=sys.stderr)
    with bar, open_rejects(rejects, source.columns) as write_reject:
        return import_users(
            db.session,
            source.rows(),
            dry_run=dry_run,
            on_progress=_advance(bar.update),
            on_reject=write_reject,
        )


def _advance(update: Callable[[int], None]) -> Callable[[Progress], None]:
    """Move a progress bar on by the rows the pipeline has read since the last report."""
    shown = 0

    def advance(progress: Progress) -> None:
        nonlocal shown
        update(progress.items_in - shown)
        shown = progress.items_in

    return advance


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the emails, webhooks and default queues (SIGTERM: warm shutdown)."""
    _require_schema()
    work(current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]


@click.command("bridge")
@with_appcontext
@click.option("--no-relay", is_flag=True, help="Only consume; another process relays the outbox.")
@click.option("--relay-only", is_flag=True, help="Only relay; other processes consume.")
def bridge(no_relay: bool, relay_only: bool) -> None:
    """Relay the outbox to RabbitMQ and turn its messages into RQ jobs (until SIGTERM)."""
    if no_relay and relay_only:
        raise click.UsageError("--no-relay and --relay-only leave nothing to run")
    _require_schema()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if relay_only:
        click.echo("Relay running; Ctrl+C stops it.")
        Relay(app).run(stop)
        return
    if not no_relay:
        threading.Thread(target=Relay(app).run, args=(stop,), name="relay", daemon=True).start()
    click.echo("Bridge running" + ("" if no_relay else " with the relay") + "; Ctrl+C stops it.")
    Bridge(app).run(stop)


payments_cli = AppGroup("payments", help="Payments: reconcile those left pending.")


@payments_cli.command("reconcile")
@with_appcontext
def payments_reconcile() -> None:
    """Look up every payment still pending at its provider and apply the answer."""
    ids = list(iter_pending(db.session))
    service = get_payment_service()
    for payment_id in ids:
        click.echo(f"payment {payment_id}: {service.reconcile(payment_id)}")
    click.echo(f"{len(ids)} pending payment(s) looked up.")


@click.command("stripe-dev")
@click.option("--port", default=8420, show_default=True, type=int)
def stripe_dev(port: int) -> None:
    """Run localstripe (a fake Stripe, dev dependency) in the foreground for development."""
    click.echo(
        f"localstripe on http://127.0.0.1:{port}: set STRIPE_API_KEY=sk_test_local "
        f"STRIPE_API_BASE=http://127.0.0.1:{port} "
        f"STRIPE_JS_URL=http://127.0.0.1:{port}/js.stripe.com/v3/"
    )
    command = [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"]
    raise SystemExit(subprocess.call(command))  # noqa: S603 - our interpreter, a fixed module


def register_commands(app: Flask) -> None:
    """Attach the command groups to the app's CLI."""
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(seed)
    app.cli.add_command(worker)
    app.cli.add_command(bridge)
    app.cli.add_command(payments_cli)
    app.cli.add_command(stripe_dev)
    app.cli.add_command(openapi)


@click.command("openapi")
@with_appcontext
def openapi() -> None:
    """Print the API's OpenAPI document (the React client's types are generated from it)."""
    click.echo(document_text(current_app), nl=False)
