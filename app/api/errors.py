"""Problem JSON for schema validation errors, with one message per field."""

from __future__ import annotations

from flask import Response, request
from pydantic import ValidationError

from app.errors import ValidationFailed, problem


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Map pydantic errors to {"field.path": "message"}."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"]) or "body"
        message = (
            "This field may not be set." if error["type"] == "extra_forbidden" else error["msg"]
        )
        errors.setdefault(path, message)
    return errors


def validation_problem(exc: ValidationError) -> Response:
    """422 problem+json listing each invalid field."""
    return problem(
        422,
        "Some fields need attention",
        "The request body is not valid.",
        code="validation_failed",
        fields=field_errors(exc),
    )


def json_body() -> object:
    """The request's JSON body; a body that is not a JSON document is a 422, an absent one {}."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationFailed(
            "The request body is not valid JSON.", fields={"body": "Send a JSON object."}
        )
    return data
