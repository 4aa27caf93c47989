"""Command line: `flask --app app db upgrade`, `seed`, `users create`."""

from __future__ import annotations

import sys
import time

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app import get_settings
from app.core import migrations
from app.errors import AppError
from app.extensions import db
from app.models.user import ROLES
from app.repositories.base import unit_of_work
from app.services.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo
from app.services.users import create_user

db_cli = AppGroup("db", help="Database schema migrations (Alembic).")
users_cli = AppGroup("users", help="Manage user accounts.")


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
    settings = get_settings()
    started = time.perf_counter()

    def progress(done: int) -> None:
        click.echo(f"\r  items inserted: {done:,}", nl=False, err=True)

    with unit_of_work(db.session) as session:
        report = seed_demo(
            session,
            users=users,
            items=items,
            iterations=settings.password_hash_iterations,
            progress=progress,
        )
    if report.items_created:
        click.echo("", err=True)
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
    settings = get_settings()
    try:
        with unit_of_work(db.session) as session:
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


def register_commands(app: Flask) -> None:
    """Attach the command groups to the app's CLI."""
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(seed)
