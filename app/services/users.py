"""User account use cases that do not depend on who is signed in."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from app.core.events import Event, EventBus, EventType
from app.errors import Conflict, ValidationFailed
from app.models.base import utcnow
from app.models.user import ROLES, User
from app.repositories.users import UserRepository
from app.utils.crypto import hash_password

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who is acting, for the audit: a user id and the client IP, both optional."""

    user_id: int | None = None
    ip: str | None = None


SYSTEM = Actor()


_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def has_control_chars(value: str, *, multiline: bool = False) -> bool:
    """True for NUL and other control characters (PostgreSQL refuses NUL outright)."""
    allowed = {"\n", "\r", "\t"} if multiline else set()
    return any(ch in _CONTROL or (ch in "\n\r\t" and ch not in allowed) for ch in value)


def normalize_email(raw: str) -> str:
    """Validate the syntax and return the address lower-cased; raises ValueError."""
    if has_control_chars(raw):
        raise ValueError("The email address contains characters that are not allowed.")
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return result.normalized.lower()


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None


def create_user(
    session: Session,
    *,
    email: str,
    name: str = "",
    role: str = "user",
    password: str | None = None,
    is_active: bool = True,
    iterations: int,
    actor: Actor = SYSTEM,
) -> User:
    """Create an account after validating every field; publishes USER_CREATED."""
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except ValueError as exc:
        errors["email"] = str(exc)
    if role not in ROLES:
        errors["role"] = f"Role must be one of {', '.join(ROLES)}."
    if password is not None and (problem := password_problem(password)):
        errors["password"] = problem
    if len(name) > 120:
        errors["name"] = "Use at most 120 characters."
    elif has_control_chars(name):
        errors["name"] = "Remove the control characters."
    if errors:
        raise ValidationFailed(fields=errors)
    repo = UserRepository(session)
    if repo.email_taken(email):
        raise Conflict(
            f"An account with the email {email} already exists.",
            fields={"email": "Already registered."},
        )
    user = repo.add(
        User(
            email=email,
            name=name.strip(),
            role=role,
            is_active=is_active,
            password_hash=hash_password(password, iterations=iterations) if password else None,
            password_changed_at=utcnow() if password else None,
        )
    )
    EventBus.get_instance().publish_sync(
        Event(
            type=EventType.USER_CREATED,
            actor_id=actor.user_id,
            ip=actor.ip,
            subject_type="user",
            subject_id=str(user.id),
            payload={"email": user.email, "role": user.role},
        )
    )
    return user
