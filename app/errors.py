"""The AppError tree: what services raise when a request cannot be served.

Plain exceptions with an HTTP status and a message that is safe to show; they
import no Flask, so services, jobs and the CLI raise them too. app/edge.py turns
them into a page, an HTMX fragment or problem JSON.
"""

from __future__ import annotations

from collections.abc import Mapping


class AppError(Exception):
    """An error with an HTTP status and a message that is safe to show."""

    status = 500
    title = "Something went wrong"
    code = "internal_error"
    default_message: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message or self.title
        super().__init__(self.message)
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


class BadRequest(AppError):
    status, title, code = 400, "Bad request", "bad_request"


class Unauthorized(AppError):
    status, title, code = 401, "Sign-in required", "unauthorized"


class Forbidden(AppError):
    status, title, code = 403, "Access denied", "forbidden"
    default_message = "You do not have permission to do that."


class NotFound(AppError):
    status, title, code = 404, "Not found", "not_found"


class Conflict(AppError):
    status, title, code = 409, "Conflict", "conflict"


class ValidationFailed(AppError):
    status, title, code = 422, "Some fields need attention", "validation_failed"


class RateLimited(AppError):
    status, title, code = 429, "Too many attempts", "rate_limited"


class ServiceUnavailable(AppError):
    status, title, code = 503, "Service temporarily unavailable", "unavailable"
