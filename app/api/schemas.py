"""Request and response schemas of the JSON API (pydantic), shared with the OpenAPI document.

Views use them through `validate_query`, `validate_body` and `json_response`,
and app/api/openapi.py documents the same models (query models become
`in: query` parameters), so what is checked and what is promised cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from app.core.listing import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    MAX_SEARCH_LENGTH,
    Direction,
    Listing,
    ListQuery,
)
from app.errors import BadRequest, ValidationFailed
from app.models.item import ITEM_LISTING
from app.models.messaging import DeliveryState
from app.models.user import MAX_EMAIL, MAX_NAME, USER_LISTING, Role
from app.models.webhooks import WebhookEvent
from app.services.items import ItemOut
from app.services.users import EMAIL_PATTERN, MAX_PASSWORD_LENGTH
from app.services.validation import (
    PatchModel,
    StrictModel,
    Text,
    field_errors,
    optional_not_null,
    validate,
)
from app.services.webhooks import MessageRecord

MAX_OFFSET_PAGE = 10_000  # OFFSET paging: deeper than 1M rows, narrow the search instead

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


class PasswordChange(StrictModel):
    """A new password; every session and token of the account ends, and this client gets a
    fresh token and refresh cookie."""

    current_password: Annotated[
        str,
        Text(
            MAX_PASSWORD_LENGTH,
            required="Enter your current password.",
            multiline=True,
            strip=False,
        ),
    ]
    new_password: Annotated[
        str,
        Text(MAX_PASSWORD_LENGTH, required="Choose a new password.", multiline=True, strip=False),
    ]
    confirm_password: Annotated[
        str,
        Text(MAX_PASSWORD_LENGTH, required="Repeat the new password.", multiline=True, strip=False),
    ]


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


ItemListParams = list_params(
    "ItemListParams",
    ITEM_LISTING,
    "GET /items: the HTML table's sort allowlist and search (by name), filter by status.",
)


class ItemEntry(ItemOut):
    """An item in a list, with its owner as the items page shows them."""

    owner_name: str | None = Field(
        description="The owner's name, or their email when the name is empty."
    )


class ItemPage(BaseModel):
    items: list[ItemEntry]
    page: int
    per_page: int
    total: int
    pages: int


# --- webhooks ---------------------------------------------------------------------------


class WebhookEndpointOut(BaseModel):
    """An endpoint; its secret is only ever in the answer that made it (and a rotation's)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str
    events: list[WebhookEvent]
    enabled: bool
    disabled_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(
        pattern=r"^whsec_[A-Za-z0-9+/=]+$",
        description="Shown once: verify each delivery's webhook-signature with it.",
    )


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]


class WebhookSecretOut(BaseModel):
    secret: str = Field(pattern=r"^whsec_[A-Za-z0-9+/=]+$")
    previous_secret_expires_at: datetime = Field(
        description="Until then every delivery carries a signature by the old secret too."
    )


class WebhookAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    response_excerpt: str = Field(description="The first 2 kB of the response body.")
    error: str | None


class WebhookDeliveryOut(BaseModel):
    """One message owed to the endpoint: its ledger state and every attempt so far."""

    id: int = Field(description="The delivery's id in the ledger (retry it by this id).")
    webhook_id: str = Field(description="The webhook-id header of every attempt.")
    type: str
    state: DeliveryState
    next_retry_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempts: list[WebhookAttemptOut]

    @classmethod
    def of(cls, record: MessageRecord) -> WebhookDeliveryOut:
        return cls(
            id=record.delivery.id,
            webhook_id=record.message.id,
            type=record.message.event_type,
            state=record.delivery.state,  # type: ignore[arg-type]
            next_retry_at=record.delivery.next_retry_at,
            last_error=record.delivery.last_error,
            created_at=record.message.created_at,
            attempts=[WebhookAttemptOut.model_validate(a) for a in record.attempts],
        )


class WebhookDeliveryListParams(BaseModel):
    """GET /webhooks/{id}/deliveries: newest first, paged."""

    page: int = Field(1, ge=1, le=MAX_OFFSET_PAGE)
    per_page: int = Field(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut]
    page: int
    per_page: int
    total: int
    pages: int


class ReplayOut(BaseModel):
    replayed: int = Field(description="How many messages were queued again.")


# --- validating requests ----------------------------------------------------------------


def validate_query(model: type[M], args: Mapping[str, str]) -> M:
    """Parse query parameters, or raise a 400 naming each bad one (it never reaches SQL)."""
    try:
        return model.model_validate({key: args[key] for key in args})
    except ValidationError as exc:
        fields = field_errors(exc)
        detail = f"Check the query parameter(s): {', '.join(sorted(fields))}."
        raise BadRequest(detail, fields=fields) from None


def json_body() -> dict[str, Any]:
    """The request's JSON object; a missing, unreadable or non-object body is one 422 on
    `body` (the schema's fields are only checked on an object)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("Send a JSON object.", fields={"body": "Send a JSON object."})
    return data


def validate_body(model: type[M]) -> M:
    """Parse the request's JSON object body, or raise a 422 listing each invalid field."""
    return validate(model, json_body(), message="The request body is not valid.")


def json_response(model: BaseModel, status: int = 200) -> Response:
    """Serialise a response schema (the same one the OpenAPI document shows)."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response
