"""Request and response schemas of the JSON API (pydantic), shared with the OpenAPI document.

Views use them through `validate_query`, `validate_body` and `json_response`,
and app/api/openapi.py documents the same models (query models become
`in: query` parameters), so what is checked and what is promised cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from flask import Response, jsonify, request
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.errors import BadRequest, ValidationFailed
from app.models.item import ItemStatus
from app.models.user import Role
from app.repositories.base import DEFAULT_PER_PAGE, MAX_PER_PAGE
from app.services.items import MAX_PRICE

MAX_OFFSET_PAGE = 10_000  # OFFSET paging: deeper than 1M rows, narrow the search instead
MAX_QUERY_LENGTH = 100  # the HTML table's search box limit
INT32_MAX = 2**31 - 1  # ids are INTEGER columns
PRICE_PATTERN = r"^\d{1,10}\.\d{2}$"

M = TypeVar("M", bound=BaseModel)


def _printable(value: str) -> str:
    """Refuse NUL and other control characters: PostgreSQL text cannot hold NUL."""
    if any((ord(c) < 32 and c not in "\t\n\r") or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise PydanticCustomError("control_characters", "Remove control characters.")
    return value


Text = Annotated[str, AfterValidator(_printable)]
Price = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE, decimal_places=2, max_digits=12),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": float(MAX_PRICE)},
                {"type": "string", "pattern": r"^\d{1,10}(\.\d{1,2})?$"},
            ],
            "description": "A decimal with at most two places, as a number or a string.",
            "examples": ["12.50"],
        },
        mode="validation",
    ),
]


def _optional_not_null(schema: dict[str, Any]) -> None:
    """Document `X | None = None` fields as an optional X: None means left out, never JSON null."""
    for name, prop in schema.get("properties", {}).items():
        options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
        if "anyOf" in prop and len(options) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            schema["properties"][name] = prop = {**options[0], **merged}
        if prop.get("default", 0) is None:
            del prop["default"]


class StrictModel(BaseModel):
    """Unknown fields are errors (mass-assignment protection), not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatchModel(StrictModel):
    """Every field optional, but an explicit null is refused (omit the field instead)."""

    model_config = ConfigDict(json_schema_extra=_optional_not_null)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null", "This field may not be null; leave it out instead.")
        return value


# --- problems ---------------------------------------------------------------------------


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` maps a field or parameter to its message."""

    model_config = ConfigDict(json_schema_extra=_optional_not_null)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    instance: str
    errors: dict[str, str] | None = None


# --- auth and users ---------------------------------------------------------------------


class LoginRequest(StrictModel):
    email: Text = Field(min_length=1, max_length=254)
    password: Text = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: datetime
    user: UserOut


class ProfilePatch(PatchModel):
    """What a user may change about themselves; role, is_active and id are refused."""

    name: Text | None = Field(default=None, min_length=1, max_length=120)
    email: Text | None = Field(default=None, min_length=3, max_length=254)
    current_password: str | None = Field(
        default=None,
        max_length=1024,
        description="Required to change the email (password resets are sent there).",
    )


class ListParams(BaseModel):
    """Paging and search shared by every list; unknown query parameters are ignored."""

    model_config = ConfigDict(json_schema_extra=_optional_not_null)

    direction: Literal["asc", "desc"] = Field("desc", alias="dir")
    page: int = Field(1, ge=1, le=MAX_OFFSET_PAGE)
    per_page: int = Field(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    q: Text = Field("", max_length=MAX_QUERY_LENGTH, description="Case-insensitive substring.")

    @field_validator("q", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class UserListParams(ListParams):
    """GET /users: sort by an allowlisted column, search email and name, filter by role."""

    sort: Literal["id", "email", "name", "role", "created_at"] = "email"
    direction: Literal["asc", "desc"] = Field("asc", alias="dir")
    role: Role | None = None
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    page: int
    per_page: int
    total: int
    pages: int


# --- items ------------------------------------------------------------------------------


class ItemOut(BaseModel):
    """An item; `price` is a string with exactly two decimals ("12.50") so no float rounds it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    name: str
    description: str
    status: ItemStatus
    price: str = Field(pattern=PRICE_PATTERN, examples=["12.50"])
    created_at: datetime
    updated_at: datetime

    @field_validator("price", mode="before")
    @classmethod
    def _two_places(cls, value: Any) -> Any:
        return f"{Decimal(value):.2f}" if isinstance(value, Decimal | int | float) else value


class ItemCreate(StrictModel):
    """A new item; the owner is whoever creates it. id, owner_id and timestamps are refused."""

    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=5000)
    status: ItemStatus = "draft"
    price: Price


class ItemPatch(PatchModel):
    """Change some fields of an item; leave out what stays the same."""

    name: Text | None = Field(None, min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=5000)
    status: ItemStatus | None = None
    price: Price | None = None


class ItemListParams(ListParams):
    """GET /items: the HTML table's sort allowlist and search (by name), filter by status."""

    sort: Literal["id", "name", "price", "status", "created_at", "updated_at"] = "created_at"
    status: ItemStatus | None = None


class ItemPage(BaseModel):
    items: list[ItemOut]
    page: int
    per_page: int
    total: int
    pages: int


# --- validating requests ----------------------------------------------------------------


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


def validate_query(model: type[M], args: Mapping[str, str]) -> M:
    """Parse query parameters, or raise a 400 naming each bad one (it never reaches SQL)."""
    try:
        return model.model_validate({key: args[key] for key in args})
    except ValidationError as exc:
        fields = field_errors(exc)
        detail = f"Check the query parameter(s): {', '.join(sorted(fields))}."
        raise BadRequest(detail, fields=fields) from None


def validate_body(model: type[M]) -> M:
    """Parse the request's JSON object body, or raise a 422 listing each invalid field.

    A missing, unreadable or non-object body is one error on `body`: the schema's
    fields are only checked on an object.
    """
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("Send a JSON object.", fields={"body": "Send a JSON object."})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("The request body is not valid.", fields=field_errors(exc)) from None


def json_response(model: BaseModel, status: int = 200) -> Response:
    """Serialise a response schema (the same one the OpenAPI document shows)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response
