"""User accounts: create, look up and list them (who is signed in does not matter here)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from app.core.cache import cached
from app.core.events import SYSTEM, Actor, EventType, publish
from app.core.listing import ListQuery, Page, Seek
from app.errors import Conflict, NotFound, ValidationFailed
from app.models.base import MAX_ID, utcnow
from app.models.user import MAX_NAME, ROLES, USER_LISTING, User
from app.repositories.users import UserRepository
from app.utils.crypto import hash_password
from app.utils.text import allowed_text_pattern, has_control_chars

LISTING = USER_LISTING
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


EMAIL_PATTERN = (
    f"^(?!.*@(.*\\.)?({'|'.join(_any_case(d) for d in SPECIAL_USE_DOMAIN_NAMES)})$)"
    + allowed_text_pattern().removeprefix("^")
)
"""What normalize_email refuses besides the syntax of `format: email`, as a JSON Schema
pattern: control characters, and special-use domains (.test, .local, .invalid, ...)."""


def normalize_email(raw: str) -> str:
    """Validate the syntax and return the address lower-cased; raises ValueError."""
    if has_control_chars(raw):
        raise ValueError("The email address contains characters that are not allowed.")
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return result.normalized.lower()


def name_problem(name: str) -> str | None:
    """Why a display name is unacceptable, or None (empty is acceptable here)."""
    if len(name) > MAX_NAME:
        return f"Use at most {MAX_NAME} characters."
    if has_control_chars(name):
        return "Remove the control characters."
    return None


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
    welcome: bool = False,
) -> User:
    """Create an account after validating every field; publishes USER_CREATED (with
    `welcome`, the account is owed a welcome email: self-service sign-ups)."""
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except ValueError as exc:
        errors["email"] = str(exc)
    if role not in ROLES:
        errors["role"] = f"Role must be one of {', '.join(ROLES)}."
    if password is not None and (problem := password_problem(password)):
        errors["password"] = problem
    if problem := name_problem(name):
        errors["name"] = problem
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
    announce_created(session, user, actor, **({"welcome": True} if welcome else {}))
    return user


def announce_created(session: Session, user: User, actor: Actor, **extra: Any) -> None:
    """Publish USER_CREATED for a new account (sign-up, admin, CLI or import)."""
    publish(
        session,
        EventType.USER_CREATED,
        subject=("user", user.id),
        actor=actor,
        email=user.email,
        role=user.role,
        **extra,
    )


def get_user(session: Session, user_id: int) -> User:
    """The account with this id; NotFound otherwise (ids past INTEGER included)."""
    user = UserRepository(session).get(user_id) if 1 <= user_id <= MAX_ID else None
    if user is None:
        raise NotFound("No such user.")
    return user


def find_by_email(session: Session, email: str) -> User | None:
    """The account with this email (any case), or None; text no account can have is None."""
    if not email.strip() or has_control_chars(email):
        return None
    return UserRepository(session).by_email(email)


def list_users(session: Session, query: ListQuery, seek: Seek | None = None) -> Page[User]:
    """One page of accounts, sorted, searched and filtered as USER_LISTING allows."""
    return UserRepository(session).list(query, seek=seek)


def display_names(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """What others see of these accounts, as the items page shows an owner: the name, or
    the email when the name is empty. Cached under `user-names`, which a new, renamed or
    deleted account drops: the API's item lists ask for them on every page, and the query
    cost more CPU than the rest of the list."""
    ids = tuple(sorted(set(user_ids)))
    return {int(k): v for k, v in _display_names(session, ids).items()} if ids else {}


@cached(
    ttl=timedelta(minutes=10), key_prefix="users:names", tags=("user-names",), ignore=("session",)
)
def _display_names(session: Session, ids: tuple[int, ...]) -> dict[int, str]:
    return UserRepository(session).display_names(set(ids))
