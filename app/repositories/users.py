"""Data access for user accounts."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models.user import USER_LISTING, User
from app.repositories.base import BaseRepository


class UserRepository(BaseRepository[User]):
    """Users, looked up by normalised (lower-case) email."""

    model = User
    listing = USER_LISTING

    def by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively."""
        return self.session.scalar(select(User).where(User.email == email.strip().lower()))

    def email_taken(self, email: str, *, except_id: int | None = None) -> bool:
        """Whether another account already uses this email."""
        stmt = select(func.count()).select_from(User).where(User.email == email.strip().lower())
        if except_id is not None:
            stmt = stmt.where(User.id != except_id)
        return bool(self.session.scalar(stmt))

    def existing_emails(self, emails: list[str]) -> set[str]:
        """Which of these (lower-case) emails already have accounts."""
        if not emails:
            return set()
        return set(self.session.scalars(select(User.email).where(User.email.in_(emails))))

    def display_names(self, ids: set[int]) -> dict[int, str]:
        """Name (or email, when the name is empty) by id, for the given accounts."""
        if not ids:
            return {}
        rows = self.session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
        return {row.id: row.name or row.email for row in rows}
