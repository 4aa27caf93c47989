"""Typed validation shared by pages and the API: one schema, one set of messages.

A form (a MultiDict of strings) and a JSON body go through the same pydantic
models, so an item is checked once whichever door it came through. Messages are
written for people ("Enter a name."), because pages show them beside the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from app.errors import ValidationFailed
from app.utils.text import allowed_text_pattern, has_control_chars

M = TypeVar("M", bound=BaseModel)

MAX_PRICE = Decimal("9999999999.99")
PRICE_TEXT = r"^ *[0-9]{1,10}(\.[0-9]{1,2})? *$"
"""How a price is written as text: ASCII digits, at most two decimals, spaces around allowed."""
_PRICE_TEXT = re.compile(PRICE_TEXT)


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def optional_not_null(schema: dict[str, Any]) -> None:
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

    model_config = ConfigDict(extra="forbid")


class PatchModel(StrictModel):
    """Every field optional, but an explicit null is refused (omit the field instead)."""

    model_config = ConfigDict(json_schema_extra=optional_not_null)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null", "This field may not be null; leave it out instead.")
        return value


@dataclass(frozen=True)
class Text:
    """Annotated[str, Text(...)]: at most `max_length`, no control characters, then stripped.

    `required` is the message for a value that is empty once stripped (None: empty
    is fine). Length and characters are checked as sent, so the JSON schema's
    maxLength and pattern state exactly what the check enforces.
    """

    max_length: int
    required: str | None = None
    multiline: bool = False
    strip: bool = True

    def check(self, value: str) -> str:
        if has_control_chars(value, multiline=self.multiline):
            raise _problem("Remove the control characters.")
        if len(value) > self.max_length:
            raise _problem(f"Use at most {self.max_length:,} characters.")
        value = value.strip() if self.strip else value
        if self.required and not value:
            raise _problem(self.required)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = dict(handler(schema))
        json_schema["maxLength"] = self.max_length
        if self.required:
            json_schema["minLength"] = 1
        visible = bool(self.required and self.strip)  # whitespace alone strips to nothing
        json_schema["pattern"] = allowed_text_pattern(multiline=self.multiline, visible=visible)
        return json_schema


@dataclass(frozen=True)
class OneOf:
    """Annotated[str, OneOf(...)]: one of `options`, with a message that lists them."""

    options: tuple[str, ...]
    label: str

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise _problem(f"{self.label} must be one of {', '.join(self.options)}.")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.options)}


def parse_price(raw: Any) -> Decimal:
    """A price: a non-negative decimal with at most two places, as a number or a string."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _problem("Enter a price.")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise _problem("Enter a price such as 12.50.")
    try:
        price = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _problem("Enter a price such as 12.50.") from None
    if not price.is_finite():
        raise _problem("Enter a price such as 12.50.")
    if price < 0:
        raise _problem("The price cannot be negative.")
    if price > MAX_PRICE:
        raise _problem("The price is too large.")
    if price != price.quantize(Decimal("0.01")):
        raise _problem("Use at most two decimals.")
    if isinstance(raw, str) and not _PRICE_TEXT.fullmatch(raw):  # "1e2", "١٢", "1_000", "-0"
        raise _problem("Enter a price such as 12.50.")
    return abs(price.quantize(Decimal("0.01")))  # abs: the number -0.0 is 0.00


Price = Annotated[
    Decimal,
    BeforeValidator(parse_price),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": float(MAX_PRICE),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": PRICE_TEXT},
            ],
            "description": "A decimal with at most two places, as a number or a string "
            "of ASCII digits such as 12.50.",
            "examples": ["12.50"],
        },
        mode="validation",
    ),
]


PLAIN_MESSAGES = {
    "extra_forbidden": "This field may not be set.",
    "too_short": "Choose at least one.",  # lists (strings say it through Text)
}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Map pydantic errors to {"field.path": "message"}, the first message per field."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"]) or "body"
        errors.setdefault(path, PLAIN_MESSAGES.get(error["type"], error["msg"]))
    return errors


def validate(model: type[M], data: Mapping[str, Any], *, message: str | None = None) -> M:
    """Parse `data` with `model`, or raise ValidationFailed naming each bad field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ValidationFailed(message, fields=field_errors(exc)) from None
