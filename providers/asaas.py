"""Asaas: customers and subscriptions (`/v3`). Asaas has no idempotency key and allows duplicate
customers, so creation is made idempotent by looking up our `externalReference` first."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic.alias_generators import to_camel

from providers.base import ServiceClient, segment, text
from providers.errors import NotFoundError

PAGE_SIZE = 100  # the largest page Asaas serves


class _AsaasModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", coerce_numbers_to_str=True
    )


class AsaasCustomer(_AsaasModel):
    id: str
    name: str | None = None
    cpf_cnpj: str | None = None
    email: str | None = None
    mobile_phone: str | None = None
    external_reference: str | None = None
    date_created: date | None = None
    deleted: bool = False


class AsaasSubscription(_AsaasModel):
    id: str
    customer: str
    billing_type: str
    value: Decimal
    next_due_date: date
    cycle: str
    description: str | None = None
    external_reference: str | None = None
    status: str | None = None
    date_created: date | None = None
    deleted: bool = False


class AsaasPayment(_AsaasModel):
    """A charge; a subscription's charge has `subscription`, and its `due_date` is the start of
    the period it pays for."""

    id: str
    customer: str | None = None
    subscription: str | None = None
    value: Decimal | None = None
    status: str
    due_date: date | None = None
    payment_date: date | None = None
    confirmed_date: date | None = None
    external_reference: str | None = None
    deleted: bool = False


# What Asaas can look up by our externalReference.
_Referenced = TypeVar("_Referenced", AsaasCustomer, AsaasSubscription)


class AsaasClient(ServiceClient):
    """Errors arrive as {"errors": [{"code", "description"}]}; 429 carries `RateLimit-Reset`."""

    service = "asaas"

    def __init__(self, http: httpx.AsyncClient, api_key: str | SecretStr, user_agent: str) -> None:
        super().__init__(http, api_key)
        self._user_agent = user_agent

    def _auth_headers(self) -> dict[str, str]:
        # Asaas refuses requests without a User-Agent naming the application.
        return {"access_token": self._secret.get_secret_value(), "User-Agent": self._user_agent}

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            descriptions = "; ".join(str(e.get("description", "")) for e in errors)
            return text(errors[0].get("code")), descriptions
        return None, None

    # --- customers -------------------------------------------------------------------------

    async def find_customer(self, external_reference: str) -> AsaasCustomer | None:
        """The first live customer Asaas lists with exactly this externalReference, if any."""
        return await self._find_by_reference("/customers", AsaasCustomer, external_reference)

    async def find_customers(self, external_reference: str) -> list[AsaasCustomer]:
        """Every live customer with exactly this externalReference, in Asaas's order."""
        return await self._all_by_reference("/customers", AsaasCustomer, external_reference)

    async def create_customer(
        self,
        name: str,
        cpf_cnpj: str,
        email: str,
        mobile_phone: str | None,
        external_reference: str,
        *,
        notification_disabled: bool = False,
    ) -> AsaasCustomer:
        """Create unconditionally; prefer `ensure_customer`, which cannot duplicate."""
        body = {
            "name": name,
            "cpfCnpj": cpf_cnpj,
            "email": email,
            "mobilePhone": mobile_phone,
            "externalReference": external_reference,
            "notificationDisabled": notification_disabled,
        }
        response = await self._request("POST", "/customers", json=body)
        return self._parse(AsaasCustomer, self._json(response))

    async def ensure_customer(
        self,
        name: str,
        cpf_cnpj: str,
        email: str,
        mobile_phone: str | None,
        external_reference: str,
        *,
        notification_disabled: bool = False,
    ) -> tuple[AsaasCustomer, bool]:
        """The customer for `external_reference`, created only if absent; the bool is True when
        this call created it. Safe to retry: a create whose answer was lost is found next time."""
        existing = await self.find_customer(external_reference)
        if existing is not None:
            return existing, False
        created = await self.create_customer(
            name,
            cpf_cnpj,
            email,
            mobile_phone,
            external_reference,
            notification_disabled=notification_disabled,
        )
        return created, True

    async def delete_customer(self, customer_id: str) -> None:
        """Delete (with its subscriptions and pending charges); already gone counts as done."""
        try:
            await self._request("DELETE", f"/customers/{segment(customer_id)}")
        except NotFoundError:
            return

    async def list_customers(self) -> list[AsaasCustomer]:
        """Every customer, all pages."""
        return [self._parse(AsaasCustomer, item) for item in await self._list("/customers", {})]

    # --- subscriptions ---------------------------------------------------------------------

    async def create_subscription(
        self,
        customer_id: str,
        billing_type: str,
        value: Decimal,
        next_due_date: date,
        cycle: str,
        description: str,
        external_reference: str,
    ) -> AsaasSubscription:
        body = {
            "customer": customer_id,
            "billingType": billing_type,
            "value": str(value),
            "nextDueDate": next_due_date.isoformat(),
            "cycle": cycle,
            "description": description,
            "externalReference": external_reference,
        }
        response = await self._request("POST", "/subscriptions", json=body)
        return self._parse(AsaasSubscription, self._json(response))

    async def find_subscription(self, external_reference: str) -> AsaasSubscription | None:
        """The first live subscription Asaas lists with exactly this externalReference, if any."""
        return await self._find_by_reference(
            "/subscriptions", AsaasSubscription, external_reference
        )

    async def find_subscriptions(self, external_reference: str) -> list[AsaasSubscription]:
        """Every live subscription with exactly this externalReference, in Asaas's order."""
        return await self._all_by_reference("/subscriptions", AsaasSubscription, external_reference)

    async def get_subscription(self, subscription_id: str) -> AsaasSubscription | None:
        """The subscription, or None when Asaas does not know it (or it was deleted)."""
        try:
            response = await self._request("GET", f"/subscriptions/{segment(subscription_id)}")
        except NotFoundError:
            return None
        found = self._parse(AsaasSubscription, self._json(response))
        return None if found.deleted else found

    async def list_subscriptions(self) -> list[AsaasSubscription]:
        """Every subscription, all pages."""
        return [
            self._parse(AsaasSubscription, item) for item in await self._list("/subscriptions", {})
        ]

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete; already gone counts as done."""
        try:
            await self._request("DELETE", f"/subscriptions/{segment(subscription_id)}")
        except NotFoundError:
            return

    # --- payments --------------------------------------------------------------------------

    async def get_payment(self, payment_id: str) -> AsaasPayment | None:
        """The payment as Asaas records it, or None when Asaas does not know it."""
        try:
            response = await self._request("GET", f"/payments/{segment(payment_id)}")
        except NotFoundError:
            return None
        return self._parse(AsaasPayment, self._json(response))

    async def list_payments(self, **filters: str) -> list[AsaasPayment]:
        """Every payment matching the filters (`subscription`, `status`, `dueDate[ge]`, ...)."""
        return [self._parse(AsaasPayment, item) for item in await self._list("/payments", filters)]

    async def payments_page(
        self, *, offset: int, limit: int = PAGE_SIZE, **filters: str
    ) -> tuple[list[AsaasPayment], bool]:
        """One page of `GET /v3/payments` with the filters, and whether more follow."""
        params: dict[str, str | int] = {**filters, "offset": offset, "limit": limit}
        page = self._json(await self._request("GET", "/payments", params=params))
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise self._unexpected("/payments did not answer a list")
        return [self._parse(AsaasPayment, item) for item in data], bool(page.get("hasMore"))

    # --- helpers ---------------------------------------------------------------------------

    async def _find_by_reference(
        self, path: str, model: type[_Referenced], external_reference: str
    ) -> _Referenced | None:
        found = await self._all_by_reference(path, model, external_reference)
        return found[0] if found else None

    async def _all_by_reference(
        self, path: str, model: type[_Referenced], external_reference: str
    ) -> list[_Referenced]:
        # Asaas filters loosely and lists deleted records too: check both ourselves.
        items = [
            self._parse(model, item)
            for item in await self._list(path, {"externalReference": external_reference})
        ]
        return [i for i in items if i.external_reference == external_reference and not i.deleted]

    async def _list(self, path: str, filters: dict[str, str]) -> list[Any]:
        """Every item of a list endpoint, following `hasMore` page by page."""
        items: list[Any] = []
        offset = 0
        while True:
            params: dict[str, str | int] = {**filters, "offset": offset, "limit": PAGE_SIZE}
            page = self._json(await self._request("GET", path, params=params))
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise self._unexpected(f"{path} did not answer a list")
            items.extend(data)
            if not page.get("hasMore") or not data:
                return items
            offset += len(data)
