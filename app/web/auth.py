"""Sign in, sign out, register, forgot and reset password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, request, url_for
from flask_login import current_user

from app.errors import AppError, RateLimited, ValidationFailed
from app.extensions import db
from app.htmx import render
from app.policy import policy
from app.security import (
    account_ip_key,
    client_ip,
    counts_toward_limits,
    current_db_user,
    end_server_sessions,
    limiter,
    login_throttle,
    require_sessions,
    safe_next,
    sign_in,
    sign_out,
)
from app.services import accounts
from app.settings import get_settings
from app.web.responses import see_other

bp = Blueprint("auth", __name__)

LOGIN_FRAGMENTS = {"login-form": "login_form"}
GENERIC_LOGIN_ERROR = "The email or password is incorrect, or the account is inactive."


def _forgot_page(**context: Any) -> Response:
    return render("auth/forgot.html", fragments={"forgot-form": "forgot_form"}, **context)


def _reset_page(**context: Any) -> Response:
    return render("auth/reset.html", fragments={"reset-form": "reset_form"}, **context)


def _login_form(
    *,
    status: int,
    next: str,
    email: str,
    error: str | None = None,
    retry_after: int | None = None,
) -> Response:
    """The sign-in form again, keeping the email, with one message above it."""
    return render(
        "auth/login.html",
        fragments=LOGIN_FRAGMENTS,
        status=status,
        next=next,
        values={"email": email},
        errors={"form": error} if error else {},
        retry_after=retry_after,
    )


def _login_limit() -> str:
    return get_settings().login_rate_limit


@bp.get("/login")
@policy("public")
def login() -> Response:
    """The sign-in form (signed-in visitors go straight on)."""
    target = safe_next(request.args.get("next"), url_for("home.index"))
    if current_user.is_authenticated:
        return see_other(target)
    return render("auth/login.html", fragments=LOGIN_FRAGMENTS, next=target, values={}, errors={})


@bp.post("/login")
@policy("public")
@limiter.limit(_login_limit, methods=["POST"], deduct_when=counts_toward_limits)
def login_submit() -> Response:
    """Check credentials with a progressive lockout per (account, IP)."""
    require_sessions()
    form = request.form
    email, password = form.get("email", "").strip(), form.get("password", "")
    target = safe_next(form.get("next"), url_for("home.index"))
    try:
        with db.transaction() as session:
            user = accounts.sign_in_attempt(
                session,
                email,
                password,
                throttle=login_throttle(),
                iterations=get_settings().password_hash_iterations,
                ip=client_ip(),
            )
    except RateLimited as exc:  # the form stays, with the wait counting down
        response = _login_form(
            status=429, next=target, email=email, retry_after=int(exc.headers["Retry-After"])
        )
        response.headers.update(exc.headers)
        return response
    if user is None:
        return _login_form(status=422, next=target, email=email, error=GENERIC_LOGIN_ERROR)
    sign_in(user, remember=form.get("remember") == "on")
    flash(f"Welcome back, {user.name or user.email}.", "success")
    return see_other(target)


@bp.post("/logout")
@policy("session")
def logout() -> Response:
    """Sign out (POST only, so a link or image cannot sign anyone out)."""
    if current_user.is_authenticated:
        with db.transaction() as session:
            accounts.record_logout(session, current_db_user(), ip=client_ip())
    sign_out()
    flash("You have signed out.", "info")
    return see_other(url_for("auth.login"))


@bp.get("/register")
@policy("public")
def register() -> Response:
    """The sign-up form, when registration is open."""
    if not get_settings().registration_enabled:
        abort(404)
    return render(
        "auth/register.html", fragments={"register-form": "register_form"}, values={}, errors={}
    )


@bp.post("/register")
@policy("public")
@limiter.limit("5 per minute; 30 per hour", methods=["POST"], deduct_when=counts_toward_limits)
def register_submit() -> Response:
    """Create a `user` account and sign it in."""
    require_sessions()
    settings = get_settings()
    if not settings.registration_enabled:
        abort(404)
    form = request.form
    try:
        with db.transaction() as session:
            user = accounts.register(
                session,
                email=form.get("email", ""),
                name=form.get("name", ""),
                password=form.get("password", ""),
                confirm=form.get("confirm_password", ""),
                iterations=settings.password_hash_iterations,
                ip=client_ip(),
            )
    except ValidationFailed as exc:
        return render(
            "auth/register.html",
            fragments={"register-form": "register_form"},
            status=422,
            values={"email": form.get("email", ""), "name": form.get("name", "")},
            errors=exc.fields,
        )
    sign_in(user, remember=False)
    flash("Your account is ready. Welcome!", "success")
    return see_other(url_for("home.index"))


@bp.get("/forgot")
@policy("public")
def forgot() -> Response:
    """Ask for a reset link."""
    return _forgot_page(
        sent=False,
        values={},
        errors={},
    )


@bp.post("/forgot")
@policy("public")
@limiter.limit("5 per minute; 20 per hour", methods=["POST"], deduct_when=counts_toward_limits)
@limiter.limit(
    "5 per hour", key_func=account_ip_key, methods=["POST"], deduct_when=counts_toward_limits
)
def forgot_submit() -> Response:
    """Email a reset link if the account exists; the answer is the same either way."""
    email = request.form.get("email", "").strip()
    if not email:
        return _forgot_page(
            status=422,
            sent=False,
            values={},
            errors={"email": "Enter the email you signed up with."},
        )
    with db.transaction() as session:
        accounts.request_password_reset(session, email, ip=client_ip())
    return _forgot_page(
        sent=True,
        values={"email": email},
        errors={},
    )


@bp.get("/reset/<token>")
@policy("public")
def reset(token: str) -> Response:
    """Choose a new password from an emailed link."""
    try:
        accounts.user_for_reset_token(db.session, token, get_settings().secret_key)
    except AppError as exc:
        return _reset_page(status=400, token=token, invalid=exc.message, errors={})
    return _reset_page(token=token, invalid=None, errors={})


@bp.post("/reset/<token>")
@policy("public")
@limiter.limit("10 per minute", methods=["POST"], deduct_when=counts_toward_limits)
def reset_submit(token: str) -> Response:
    """Set the new password; the link then stops working and other sessions end."""
    require_sessions()
    settings = get_settings()
    form = request.form
    try:
        with db.transaction() as session:
            user = accounts.reset_password(
                session,
                token,
                new=form.get("new_password", ""),
                confirm=form.get("confirm_password", ""),
                secret_key=settings.secret_key,
                iterations=settings.password_hash_iterations,
                ip=client_ip(),
            )
    except ValidationFailed as exc:
        return _reset_page(status=422, token=token, invalid=None, errors=exc.fields)
    except AppError as exc:
        return _reset_page(status=400, token=token, invalid=exc.message, errors={})
    end_server_sessions(user.id)
    flash("Your password has been changed. Sign in with the new one.", "success")
    return see_other(url_for("auth.login"))
