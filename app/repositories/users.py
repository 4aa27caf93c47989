"""Data access for user accounts."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models.user import User
from app.repositories.base import BaseRepository


class UserRepository(BaseRepository[User]):
    """Users, looked up by normalised (lower-case) email."""

    model = User
    sortable = {
        "id": User.id,
        "email": User.email,
        "name": User.name,
        "role": User.role,
        "created_at": User.created_at,
    }
    searchable = (User.email, User.name)
    filterable = {"role": User.role, "is_active": User.is_active}

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

    def count_all(self) -> int:
        """Number of accounts."""
        return int(self.session.scalar(select(func.count()).select_from(User)) or 0)
