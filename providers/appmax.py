"""AppMax Apphooks: the "Standard" envelope, the events Entrega acts on, and the URL token check.
AppMax documents no signature, so the webhook URL carries a secret token (`?token=...`)."""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

GRANT_EVENTS = frozenset({"OrderApproved", "OrderPaid", "OrderPaidByPix"})
REVOKE_EVENTS = frozenset({"OrderRefund", "OrderChargeBackInTreatment"})


class ApphookCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    phone: str | None = None


class ApphookProduct(BaseModel):
    """One product of the order. AppMax's "Standard" Apphook documents no product list (only
    `total_products` and `total`); its order API takes and answers products as `{sku, name, qty,
    price}`, so an Apphook template that includes them is read in that shape (`id`/`quantity`
    accepted too). Unconfirmed: an Apphook without them is matched by amount alone."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    sku: str | None = Field(default=None, validation_alias=AliasChoices("sku", "id"))
    name: str | None = None
    qty: int | None = Field(default=None, validation_alias=AliasChoices("qty", "quantity"))
    price: Decimal | None = None


class ApphookOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    # `total` is what the customer was charged, shipping and card interest included;
    # `total_products` is the products' value alone.
    total: Decimal | None = None
    total_products: Decimal | None = None
    products: list[ApphookProduct] | None = None
    created_at: str | None = None
    status: str | None = None
    payment_type: str | None = None
    customer: ApphookCustomer = Field(default_factory=ApphookCustomer)


class Apphook(BaseModel):
    """`{"event": "<name>", "event_type": "", "data": {...}}`; `data.id` is the order id."""

    model_config = ConfigDict(extra="ignore")

    event: str
    event_type: str | None = ""
    data: ApphookOrder

    @property
    def grants(self) -> bool:
        return self.event in GRANT_EVENTS

    @property
    def revokes(self) -> bool:
        return self.event in REVOKE_EVENTS

    def dedupe_key(self) -> str:
        """AppMax re-sends: one (event, order id) pair is handled once."""
        return f"{self.event}:{self.data.id}"


def verify_token(expected: str, given: str | None) -> bool:
    """Whether the URL's token is ours, compared in constant time; an unset token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def envelope(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """An Apphook body as AppMax sends it (used by the sandbox)."""
    return {"event": event, "event_type": "", "data": data}
