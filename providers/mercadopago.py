"""Mercado Pago: fetch a payment's real state after a notification (GET /v1/payments/{id})."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.base import ServiceClient, segment


class MercadoPagoPayer(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class MercadoPagoItem(BaseModel):
    """One `additional_info.items[]` entry, as the checkout set it. MP answers `quantity` and
    `unit_price` as strings ("1", "49.9"); both are read as numbers."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str | None = None
    title: str | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None


class MercadoPagoAdditionalInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[MercadoPagoItem] | None = None


class MercadoPagoPayment(BaseModel):
    """The fields of a payment Entrega uses; MP sends many more."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    status: str
    status_detail: str | None = None
    transaction_amount: Decimal
    currency_id: str | None = None
    payment_method_id: str | None = None
    payment_type_id: str | None = None
    external_reference: str | None = None
    date_created: datetime | None = None
    date_approved: datetime | None = None
    additional_info: MercadoPagoAdditionalInfo | None = None
    payer: MercadoPagoPayer = Field(default_factory=MercadoPagoPayer)
    metadata: dict[str, Any] = Field(default_factory=dict)


class MercadoPagoClient(ServiceClient):
    """401/403/404 are permanent for this credential; 429 and 5xx are transient. Errors arrive as
    {"message": "Payment not found", "error": "not_found", "status": 404, "cause": [...]}."""

    service = "mercadopago"

    def __init__(self, http: httpx.AsyncClient, access_token: str | SecretStr) -> None:
        super().__init__(http, access_token)

    async def get_payment(self, payment_id: str) -> MercadoPagoPayment:
        response = await self._request("GET", f"/v1/payments/{segment(payment_id)}")
        return self._parse(MercadoPagoPayment, self._json(response))

    async def search_payments(
        self,
        *,
        begin: datetime,
        end: datetime,
        offset: int,
        limit: int,
        date_range: str = "date_last_updated",
    ) -> MercadoPagoSearchPage:
        """One page of the payments whose `date_range` falls between `begin` and `end`, oldest
        first (the reconciliation's read)."""
        params: dict[str, str | int] = {
            "range": date_range,
            "begin_date": begin.isoformat(),
            "end_date": end.isoformat(),
            "sort": date_range,
            "criteria": "asc",
            "offset": offset,
            "limit": limit,
        }
        response = await self._request("GET", "/v1/payments/search", params=params)
        return self._parse(MercadoPagoSearchPage, self._json(response))


class MercadoPagoPaging(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int
    limit: int
    offset: int


class MercadoPagoSearchPage(BaseModel):
    """One page of `GET /v1/payments/search`."""

    model_config = ConfigDict(extra="ignore")

    paging: MercadoPagoPaging
    results: list[MercadoPagoPayment]
