"""What each webhook event carries in `data`: one pydantic model per shape.

Deliveries are built through these models and the OpenAPI document's
`webhooks` section is generated from them, so what receivers are promised
and what they get are the same. Every payload is
`{"type": ..., "timestamp": ..., "data": ...}` and stays under 20 kB.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.core.events import Event, EventType
from app.models.item import Item
from app.models.payment import Payment
from app.models.user import Role
from app.services.items import ItemOut


class ItemUpdatedData(ItemOut):
    changed: list[str] = Field(description="The fields that changed.")


class ItemDeletedData(BaseModel):
    id: int
    name: str | None = None


class BulkItemsData(BaseModel):
    """A bulk action over many items: either the ids chosen (at most 100 listed) or the
    search and filters that chose them."""

    bulk: Literal[True] = True
    action: str = Field(examples=["archive", "activate", "delete"])
    count: int = Field(description="How many items changed.")
    ids: list[int] | None = None
    q: str | None = None
    filters: dict[str, str] | None = None


class UserCreatedData(BaseModel):
    id: int
    email: str
    role: Role


class PaymentData(BaseModel):
    """A payment as it stands after the event (amounts in minor units)."""

    id: int
    status: str
    amount: int
    currency: str
    provider: str | None = None
    item_id: int | None = None
    refunded_amount: int = 0
    decline_code: str | None = None


class TestData(BaseModel):
    """Sent by "Send test event"; any endpoint gets it whatever it subscribes to."""

    endpoint_id: int


PAYLOADS: dict[str, tuple[type[BaseModel], ...]] = {
    "item.created": (ItemOut,),
    "item.updated": (ItemUpdatedData, BulkItemsData),
    "item.deleted": (ItemDeletedData, BulkItemsData),
    "user.created": (UserCreatedData,),
    "payment.succeeded": (PaymentData,),
    "payment.failed": (PaymentData,),
    "payment.refunded": (PaymentData,),
    "webhook.test": (TestData,),
}
"""The `data` shapes of each event type."""


def event_data(session: Session, event: Event) -> dict[str, Any]:
    """The `data` of the payload for an event."""
    payload = event.payload
    if event.subject_type == "payment":
        payment = session.get(Payment, int(event.subject_id or 0))
        return _dump(PaymentData.model_validate(payment, from_attributes=True))
    if event.subject_id is None:  # a bulk action over many items
        return _dump(BulkItemsData.model_validate(payload))
    if event.type == EventType.USER_CREATED:
        return _dump(UserCreatedData(id=int(event.subject_id), **_only(payload, "email", "role")))
    item = session.get(Item, int(event.subject_id))
    if item is None or event.type == EventType.ITEM_DELETED:
        return _dump(ItemDeletedData(id=int(event.subject_id), name=payload.get("name")))
    if event.type == EventType.ITEM_UPDATED:
        fields = list(payload.get("fields") or [])
        return _dump(ItemUpdatedData(**ItemOut.model_validate(item).model_dump(), changed=fields))
    return _dump(ItemOut.model_validate(item))


def _only(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: payload[k] for k in keys if k in payload}


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)
