"""User accounts and their roles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.listing import Listing
from app.models.base import Base, TimestampMixin, UTCDateTime

Role = Literal["admin", "user", "guest"]
ROLES: tuple[Role, ...] = get_args(Role)
MAX_EMAIL = 254
MAX_NAME = 120

USER_LISTING = Listing(
    sortable={"id": int, "email": str, "name": str, "role": str, "created_at": datetime},
    default_sort="email",
    filters={"role": ROLES, "is_active": (True, False)},
    search=("email", "name"),
)


class User(TimestampMixin, Base):
    """A person who signs in. `password_hash` is empty until a password is set."""

    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'user', 'guest')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(
        String(MAX_EMAIL), nullable=False, unique=True
    )  # stored lower-case
    name: Mapped[str] = mapped_column(String(MAX_NAME), nullable=False, default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by "log out everywhere" and password changes: every session, remember
    # cookie and API token carries the epoch it was issued under.
    auth_epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    # The interface Flask-Login expects, without importing it into the model layer.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """Session identity: id plus auth epoch, so bumping the epoch ends every session."""
        return f"{self.id}:{self.auth_epoch}"

    @property
    def is_admin(self) -> bool:
        """Admins may do everything."""
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        """Guests are read-only everywhere."""
        return self.role in ("admin", "user")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"
