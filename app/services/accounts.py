"""Account use cases: sign-in, profile, passwords, resets, and admin changes to users.

Everything here is shared by the HTMX pages and the JSON API; the edges only
translate requests and responses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.core.events import Actor, EventType, publish
from app.core.metrics import LOGINS
from app.core.throttle import FailureThrottle
from app.errors import AppError, BadRequest, Conflict, Forbidden, RateLimited, ValidationFailed
from app.models.base import utcnow
from app.models.user import ROLES, User
from app.repositories.users import UserRepository
from app.services.users import (
    create_user,
    find_by_email,
    name_problem,
    normalize_email,
    password_problem,
)
from app.utils.crypto import (
    burn_verification_time,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)

RESET_TOKEN_MAX_AGE = 60 * 60  # seconds a reset link stays valid
_RESET_SALT = "password-reset"


def _publish(
    session: Session, kind: EventType, user: User | None, actor: Actor, **payload: Any
) -> None:
    subject = ("user", user.id if user else None)
    publish(session, kind, subject=subject, actor=actor, **payload)


@dataclass(frozen=True)
class LoginResult:
    """The user on success; otherwise None and the reason (kept out of the UI)."""

    user: User | None
    reason: str | None = None


def authenticate(
    session: Session, email: str, password: str, *, iterations: int, ip: str | None = None
) -> LoginResult:
    """Check credentials; upgrade old hashes; publish USER_LOGIN or USER_LOGIN_FAILED.

    Unknown emails spend the same hashing time as wrong passwords so response
    times do not reveal which accounts exist.
    """
    user = find_by_email(session, email)
    if user is None or not user.password_hash:
        burn_verification_time(password, iterations)
        _publish(
            session,
            EventType.USER_LOGIN_FAILED,
            user,
            Actor(ip=ip),
            actor_email="".join(ch for ch in email.strip().lower() if ch.isprintable())[:254],
            reason="unknown" if user is None else "no_password",
        )
        return LoginResult(None, "unknown")
    refused = None
    if not verify_password(password, user.password_hash):
        _equalize_cost(user.password_hash, password, iterations)
        refused = "password"
    elif not user.is_active:
        refused = "inactive"
    if refused:
        actor = Actor(user_id=user.id, ip=ip)
        _publish(session, EventType.USER_LOGIN_FAILED, user, actor, reason=refused)
        return LoginResult(None, refused)
    if needs_rehash(user.password_hash, iterations):
        user.password_hash = hash_password(password, iterations=iterations)
    user.last_login_at = utcnow()
    session.flush()
    _publish(session, EventType.USER_LOGIN, user, Actor(user_id=user.id, ip=ip))
    return LoginResult(user)


def sign_in_attempt(
    session: Session,
    email: str,
    password: str,
    *,
    throttle: FailureThrottle,
    iterations: int,
    ip: str | None,
) -> User | None:
    """One sign-in, page or API alike: refused while its (account, IP) is locked out,
    counted as a failure or a success, and the user on success.

    Raises RateLimited (with Retry-After) during a lockout; the answer for wrong
    credentials is None, whatever was wrong, so it reveals nothing.
    """
    key = throttle_key(email, ip)
    wait = throttle.retry_after(key)
    if wait:
        LOGINS.labels(outcome="locked").inc()
        raise RateLimited(
            f"Too many failed attempts. Try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    result = authenticate(session, email, password, iterations=iterations, ip=ip)
    if result.user is None:
        throttle.record_failure(key)
        LOGINS.labels(outcome="failure").inc()
        return None
    throttle.reset(key)
    LOGINS.labels(outcome="success").inc()
    return result.user


def throttle_key(email: str, ip: str | None) -> str:
    """The lockout key: the account and the client, so nobody elsewhere can lock it."""
    return f"{email.strip().lower()[:254]}|{ip}"


def _equalize_cost(encoded: str | None, password: str, iterations: int) -> None:
    """An old, cheaper hash fails as slowly as an unknown email (no timing oracle)."""
    parsed = parse_hash(encoded or "")
    if parsed is not None and parsed[0] < iterations:
        burn_verification_time(password, iterations - parsed[0])


def record_logout(
    session: Session, user: User, *, ip: str | None, everywhere: bool = False
) -> None:
    """Publish USER_LOGOUT for the audit log."""
    actor = Actor(user_id=user.id, ip=ip)
    _publish(session, EventType.USER_LOGOUT, user, actor, everywhere=everywhere)


def record_refresh_reuse(
    session: Session, user_id: int, *, family: str, ended: int, ip: str | None
) -> None:
    """Publish USER_REFRESH_REUSED: a spent refresh token came back, its sign-in ended."""
    publish(
        session,
        EventType.USER_REFRESH_REUSED,
        subject=("user", user_id),
        actor=Actor(user_id=user_id, ip=ip),
        family=family,
        ended=ended,
    )


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every session, remember-me cookie and API token of the user."""
    user.auth_epoch = (user.auth_epoch or 0) + 1
    session.flush()


def update_profile(
    session: Session,
    user: User,
    data: dict[str, Any],
    *,
    actor: Actor,
    current_password: str | None = None,
) -> User:
    """Change name and email after validation; other keys are ignored here.

    A new email needs the current password: the email is where password resets
    go, so a borrowed session must not be able to redirect them and take the
    account over. Invalid fields are ValidationFailed (422); with valid fields,
    an email another account uses is a Conflict (409) and a missing or wrong
    current password is Forbidden (403), each naming its field.
    """
    errors: dict[str, str] = {}
    refusal: AppError | None = None
    changes: dict[str, Any] = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if problem := name_problem(name):
            errors["name"] = problem
        elif not name:
            errors["name"] = "Enter your name."
        elif name != user.name:
            changes["name"] = name
    if "email" in data:
        try:
            email = normalize_email(str(data["email"] or ""))
        except ValueError as exc:
            errors["email"] = str(exc)
        else:
            if email != user.email:
                refusal = _email_change_refusal(session, user, email, current_password)
                if refusal is None:
                    changes["email"] = email
    if errors:
        raise ValidationFailed(fields={**(refusal.fields if refusal else {}), **errors})
    if refusal is not None:
        raise refusal
    if changes:
        old_email = user.email
        UserRepository(session).update(user, changes)
        extra = {"old_email": old_email} if "email" in changes else {}
        _publish(session, EventType.USER_UPDATED, user, actor, fields=sorted(changes), **extra)
    return user


def _email_change_refusal(
    session: Session, user: User, email: str, current_password: str | None
) -> AppError | None:
    """Why `user` may not move to `email` (taken, or not proven by the password), or None."""
    if UserRepository(session).email_taken(email, except_id=user.id):
        message = "Another account already uses this email."
        return Conflict(message, fields={"email": message})
    if not current_password:
        message = "Enter your current password to change your email."
        return Forbidden(message, fields={"current_password": message})
    if not user.password_hash or not verify_password(current_password, user.password_hash):
        message = "That is not your current password."
        return Forbidden(message, fields={"current_password": message})
    return None


def set_password(session: Session, user: User, new_password: str, *, iterations: int) -> None:
    """Store a new hash and end every existing session and token."""
    user.password_hash = hash_password(new_password, iterations=iterations)
    user.password_changed_at = utcnow()
    end_all_sessions(session, user)


def change_password(
    session: Session,
    user: User,
    *,
    current: str,
    new: str,
    confirm: str,
    iterations: int,
    actor: Actor,
) -> None:
    """Change the password; the current one is required."""
    errors: dict[str, str] = {}
    if not verify_password(current, user.password_hash):
        errors["current_password"] = "That is not your current password."
    if problem := password_problem(new):
        errors["new_password"] = problem
    elif new != confirm:
        errors["confirm_password"] = "The two new passwords differ."
    if errors:
        raise ValidationFailed(fields=errors)
    set_password(session, user, new, iterations=iterations)
    _publish(session, EventType.USER_UPDATED, user, actor, fields=["password"])


def register(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    confirm: str,
    iterations: int,
    ip: str | None,
) -> User:
    """Self-service sign-up as a `user`."""
    if password != confirm:
        raise ValidationFailed(fields={"confirm_password": "The two passwords differ."})
    if not name.strip():
        raise ValidationFailed(fields={"name": "Enter your name."})
    try:
        return create_user(
            session,
            email=email,
            name=name,
            role="user",
            password=password,
            iterations=iterations,
            actor=Actor(ip=ip),
            welcome=True,
        )
    except Conflict as exc:
        raise ValidationFailed(
            fields={"email": "An account already uses this email. Sign in or reset your password."}
        ) from exc


# --- password reset ---------------------------------------------------------------


def _fingerprint(user: User) -> str:
    """Changes whenever the password does, which makes reset links single-use."""
    return hashlib.sha256((user.password_hash or "unset").encode()).hexdigest()[:16]


def request_password_reset(session: Session, email: str, *, ip: str | None) -> None:
    """Owe the account for `email` a reset link (the email goes out through the outbox).

    Nothing happens for an unknown or inactive email, and the caller says the same
    either way, so nobody learns which emails have accounts. The link is made when
    the email is sent, so no credential waits in the outbox.
    """
    user = find_by_email(session, email)
    if user is not None and user.is_active:
        _publish(session, EventType.PASSWORD_RESET_REQUESTED, user, Actor(user_id=None, ip=ip))


def make_reset_token(user: User, secret_key: str) -> str:
    """A signed, expiring token naming the user and the password it may replace."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    return serializer.dumps({"uid": user.id, "fp": _fingerprint(user)})


def user_for_reset_token(session: Session, token: str, secret_key: str) -> User:
    """The user a valid, unused, unexpired token belongs to; raises BadRequest otherwise."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    try:
        data = serializer.loads(token, max_age=RESET_TOKEN_MAX_AGE)
    except SignatureExpired as exc:
        raise BadRequest("This reset link has expired. Ask for a new one.") from exc
    except BadSignature as exc:
        raise BadRequest("This reset link is not valid. Ask for a new one.") from exc
    user = UserRepository(session).get(int(data.get("uid", 0)))
    if user is None or not user.is_active or data.get("fp") != _fingerprint(user):
        raise BadRequest(
            "This reset link was already used or is no longer valid. Ask for a new one."
        )
    return user


def reset_password(
    session: Session,
    token: str,
    *,
    new: str,
    confirm: str,
    secret_key: str,
    iterations: int,
    ip: str | None,
) -> User:
    """Set a new password from a reset link; the link cannot be used again."""
    user = user_for_reset_token(session, token, secret_key)
    if problem := password_problem(new):
        raise ValidationFailed(fields={"new_password": problem})
    if new != confirm:
        raise ValidationFailed(fields={"confirm_password": "The two passwords differ."})
    set_password(session, user, new, iterations=iterations)
    _publish(
        session,
        EventType.USER_UPDATED,
        user,
        Actor(user_id=user.id, ip=ip),
        fields=["password"],
        via="reset",
    )
    return user


# --- administration ----------------------------------------------------------------


def admin_update_user(
    session: Session,
    admin: User,
    target: User,
    *,
    role: str | None = None,
    is_active: bool | None = None,
    actor: Actor,
) -> User:
    """Change another user's role or active flag; admins cannot demote or lock themselves."""
    changes: dict[str, Any] = {}
    if role is not None:
        if role not in ROLES:
            raise ValidationFailed(fields={"role": f"Role must be one of {', '.join(ROLES)}."})
        if role != target.role:
            changes["role"] = role
    if is_active is not None and is_active != target.is_active:
        changes["is_active"] = is_active
    if target.id == admin.id and changes:
        raise Forbidden("You cannot change your own role or deactivate yourself.")
    if changes:
        UserRepository(session).update(target, changes)
        if changes.get("is_active") is False:
            end_all_sessions(session, target)
        _publish(session, EventType.USER_UPDATED, target, actor, fields=sorted(changes), **changes)
    return target


def admin_delete_user(session: Session, admin: User, target: User, *, actor: Actor) -> None:
    """Delete another account (its items go with it)."""
    if target.id == admin.id:
        raise Forbidden("You cannot delete your own account.")
    email = target.email
    target_id = target.id
    UserRepository(session).delete(target)
    publish(session, EventType.USER_DELETED, subject=("user", target_id), actor=actor, email=email)
