"""Data access for the delivery ledger."""

from __future__ import annotations

from app.models.messaging import DELIVERY_LISTING, Delivery
from app.repositories.base import BaseRepository


class DeliveryRepository(BaseRepository[Delivery]):
    """Deliveries, listed as DELIVERY_LISTING declares (newest first)."""

    model = Delivery
    listing = DELIVERY_LISTING
