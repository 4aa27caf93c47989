"""outbox: NOTIFY from a trigger, and a deferred ledger foreign key

A sign-up's welcome email cost four round trips (insert the ledger entry, insert the
outbox row, pg_notify, point the entry at the row). The trigger sends the NOTIFY
inside the INSERT, and with the ledger's foreign key checked at commit the entry can
take its message id from the outbox sequence as it is inserted: two round trips.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_delivery_message_id_outbox"


def upgrade() -> None:
    _foreign_key(deferred=True)
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no NOTIFY; its embedded runner wakes after the commit
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    _foreign_key(deferred=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")


def _foreign_key(*, deferred: bool) -> None:
    """The ledger's foreign key to its message, checked at commit or at once (SQLite
    rebuilds the table for it; PostgreSQL alters it in place)."""
    with op.batch_alter_table("delivery") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.create_foreign_key(
            FK,
            "outbox",
            ["message_id"],
            ["id"],
            ondelete="SET NULL",
            deferrable=True if deferred else None,
            initially="DEFERRED" if deferred else None,
        )
