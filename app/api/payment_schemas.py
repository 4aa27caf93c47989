"""Request and response schemas of /api/v1/payments (the React client's contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.api.schemas import list_params
from app.models.base import MAX_ID
from app.models.payment import PAYMENT_LISTING, PaymentStatus
from app.services.payment import Record
from app.services.validation import PatchModel, optional_not_null

PAYMENT_METHOD = r"^(pm|card)_[A-Za-z0-9_]{1,90}$"  # card_: a legacy card id, as Stripe takes
PAYPAL_VAULT_ID = r"^[A-Za-z0-9-]{1,64}$"  # PayPal's tokens; never pm_/card_ (no underscore)


class PaymentCreate(PatchModel):
    """Buy one item at its price in the database; card details never come here, only the
    PaymentMethod id Stripe.js made, or a PayPal vault token the buyer saved earlier
    (charged at once, without the buyer). Omit both to pay with PayPal's approval page."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=optional_not_null)

    item_id: int = Field(ge=1, le=MAX_ID)
    payment_method: Annotated[str, Field(pattern=PAYMENT_METHOD, max_length=100)] | None = None
    paypal_vault_id: Annotated[str, Field(pattern=PAYPAL_VAULT_ID, max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_method(self) -> PaymentCreate:
        if self.payment_method and self.paypal_vault_id:
            raise PydanticCustomError(
                "one_method", "Send a card's payment_method or a paypal_vault_id, not both."
            )
        return self

    @property
    def method(self) -> str | None:
        """The one method to charge (a PayPal vault token is told apart by its form)."""
        return self.payment_method or self.paypal_vault_id


class RefundCreate(PatchModel):
    """Refund part of a payment (`amount` in minor units), or all that is left without it."""

    model_config = ConfigDict(json_schema_extra=optional_not_null)

    amount: int | None = Field(default=None, ge=1, le=MAX_ID)


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: PaymentStatus
    amount: int = Field(description="Minor units (cents) of the item's price when bought.")
    currency: str
    provider: str | None = Field(description="stripe or paypal; null before an intent exists.")
    item_id: int | None
    item_name: str
    refunded_amount: int
    decline_code: str | None = None
    failure_message: str | None = None
    client_secret: str | None = Field(
        default=None, description="With status requires_action on Stripe: for Stripe.js."
    )
    approval_url: str | None = Field(
        default=None, description="With status requires_action on PayPal: send the buyer here."
    )
    created_at: datetime


class PaymentTransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(examples=["intent", "charge", "refund", "lookup"])
    provider: str
    outcome: str = Field(examples=["succeeded", "requires_action", "declined", "unknown", "error"])
    amount: int | None = None
    error_class: str | None = None
    decline_code: str | None = None
    duration_ms: int
    created_at: datetime


class PaymentDetail(PaymentOut):
    transactions: list[PaymentTransactionOut]

    @classmethod
    def of(cls, record: Record) -> PaymentDetail:
        base: dict[str, Any] = PaymentOut.model_validate(record.payment).model_dump()
        items = [PaymentTransactionOut.model_validate(t) for t in record.transactions]
        return cls(**base, transactions=items)


PaymentListParams = list_params(
    "PaymentListParams",
    PAYMENT_LISTING,
    "GET /payments: your payments (admins: everyone's), filter by status and provider.",
)


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    page: int
    per_page: int
    total: int
    pages: int
