"""Request and response schemas of the JSON API (pydantic), shared with the OpenAPI document.

Views use them through `validate_query`, `validate_body` and `json_response`,
and app/api/openapi.py documents the same models (query models become
`in: query` parameters), so what is checked and what is promised cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from app.core.listing import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    MAX_SEARCH_LENGTH,
    Direction,
    Listing,
    ListQuery,
)
from app.errors import BadRequest, ValidationFailed
from app.models.item import ITEM_LISTING, ItemStatus
from app.models.user import MAX_EMAIL, MAX_NAME, USER_LISTING, Role
from app.services.users import EMAIL_PATTERN, MAX_PASSWORD_LENGTH
from app.services.validation import (
    PatchModel,
    StrictModel,
    Text,
    field_errors,
    optional_not_null,
    validate,
)

MAX_OFFSET_PAGE = 10_000  # OFFSET paging: deeper than 1M rows, narrow the search instead
PRICE_PATTERN = r"^\d{1,10}\.\d{2}$"

M = TypeVar("M", bound=BaseModel)


# --- problems ---------------------------------------------------------------------------


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` maps a field or parameter to its message."""

    model_config = ConfigDict(json_schema_extra=optional_not_null)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    instance: str
    errors: dict[str, str] | None = None


# --- auth and users ---------------------------------------------------------------------


class LoginRequest(StrictModel):
    email: Annotated[str, Text(MAX_EMAIL, required="Enter your email.")]
    password: Annotated[
        str, Text(MAX_PASSWORD_LENGTH, required="Enter your password.", multiline=True, strip=False)
    ]


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

    name: Annotated[str, Text(MAX_NAME, required="Enter your name.")] | None = None
    email: Annotated[str, Text(MAX_EMAIL, required="Enter your email.")] | None = Field(
        default=None,
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
        description="A new email needs `current_password` (403 without it or when it is "
        "wrong; 409 when another account uses the address). Special-use domains "
        "(.test, .local, .invalid, ...) are refused.",
    )
    current_password: str | None = Field(
        default=None,
        max_length=1024,
        description="Required to change the email (password resets are sent there).",
    )


class ListParams(BaseModel):
    """Paging and search shared by every list; unknown query parameters are ignored.

    Each list's own model (`list_params`) adds its sort keys, default order and
    filters from the list's `Listing`, the declaration its table and repository read.
    """

    model_config = ConfigDict(json_schema_extra=optional_not_null)
    filter_names: ClassVar[tuple[str, ...]] = ()

    sort: str
    direction: Direction = Field(alias="dir")
    page: int = Field(1, ge=1, le=MAX_OFFSET_PAGE)
    per_page: int = Field(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    q: Annotated[str, Text(MAX_SEARCH_LENGTH)] = Field(
        "", description="Case-insensitive substring."
    )

    def list_query(self) -> ListQuery:
        """The repository query for these parameters (filters only when given)."""
        filters = {name: getattr(self, name) for name in self.filter_names}
        return ListQuery(
            sort=self.sort,
            direction=self.direction,
            page=self.page,
            per_page=self.per_page,
            q=self.q,
            filters={name: value for name, value in filters.items() if value is not None},
        )


def list_params(name: str, listing: Listing, doc: str) -> type[ListParams]:
    """The query model of one list, read from its Listing."""
    fields: dict[str, Any] = {
        "sort": (Literal[tuple(listing.sortable)], listing.default_sort),
        "direction": (Direction, Field(listing.default_direction, alias="dir")),
    }
    for key, values in listing.filters.items():
        kind = bool if set(values) == {True, False} else Literal[values]
        fields[key] = (kind | None, None)
    model = create_model(name, __base__=ListParams, __doc__=doc, **fields)
    model.filter_names = tuple(listing.filters)
    return model


UserListParams = list_params(
    "UserListParams",
    USER_LISTING,
    "GET /users: sort by an allowlisted column, search email and name, filter by role.",
)


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


ItemListParams = list_params(
    "ItemListParams",
    ITEM_LISTING,
    "GET /items: the HTML table's sort allowlist and search (by name), filter by status.",
)


class ItemPage(BaseModel):
    items: list[ItemOut]
    page: int
    per_page: int
    total: int
    pages: int


# --- validating requests ----------------------------------------------------------------


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
    return validate(model, data, message="The request body is not valid.")


def json_response(model: BaseModel, status: int = 200) -> Response:
    """Serialise a response schema (the same one the OpenAPI document shows)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response
