"""Mercado Pago: `GET /v1/payments/{id}`, plus control endpoints that create payments, change
their status and send the signed notification MP would send to the gateway."""

from __future__ import annotations

import functools
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from providers.mercadopago_signature import sign
from sandbox.core import Reply, Sandbox, bearer, now_iso
from sandbox.webhooks import deliver

PaymentStatus = Literal[
    "approved",
    "pending",
    "authorized",
    "in_process",
    "in_mediation",
    "rejected",
    "cancelled",
    "refunded",
    "charged_back",
]
_DETAILS: dict[str, str] = {
    "approved": "accredited",
    "pending": "pending_waiting_transfer",
    "authorized": "pending_capture",
    "in_process": "pending_review_manual",
    "in_mediation": "in_mediation",
    "rejected": "cc_rejected_other_reason",
    "cancelled": "expired",
    "refunded": "refunded",
    "charged_back": "settled",
}
_PAYMENT_TYPES = {
    "pix": "bank_transfer",
    "bolbradesco": "ticket",
    "pec": "ticket",
    "account_money": "account_money",
    "debmaster": "debit_card",
    "debelo": "debit_card",
}
# docs/interfaces.md: sandbox payments and orders carry this product unless a test names another.
DEFAULT_PRODUCT = "entrega-acesso"
# The collector (our seller account) in notifications.
USER_ID = 123456789


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": code, "status": status, "cause": []}


class NewPayment(BaseModel):
    payer_email: str
    payer_first_name: str | None = None
    payer_last_name: str | None = None
    amount: Decimal = Field(gt=0)
    status: PaymentStatus = "approved"
    payment_method_id: str = "pix"
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_reference: str | None = None
    # What the checkout sold: one `additional_info.items[]` line with this id (null: no items,
    # a payment that names no product) and the payment's `currency_id`.
    product_id: str | None = DEFAULT_PRODUCT
    currency: str = Field(default="BRL", pattern=r"^[A-Z]{3}$")


class StatusChange(BaseModel):
    status: PaymentStatus


class Notify(BaseModel):
    """Optional knobs of a notification; by default `payment.created` on the first, then updated."""

    action: Literal["payment.created", "payment.updated"] | None = None
    ts_unit: Literal["s", "ms"] = "ms"


def router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter()

    # Declared before /payments/{payment_id}, which would otherwise take "search" for an id.
    @api.get("/mercadopago/v1/payments/search", tags=["mercadopago"])
    async def search_payments(request: Request) -> dict[str, Any]:
        if bearer(request) != sandbox.secret("mercadopago_access_token"):
            raise Reply(401, error(401, "unauthorized", "invalid access token"))
        await sandbox.fault("mercadopago", "search_payments", request, error)
        return search(list(sandbox.state.mp_payments.values()), request.query_params)

    @api.get("/mercadopago/v1/payments/{payment_id}", tags=["mercadopago"])
    async def get_payment(payment_id: str, request: Request) -> dict[str, Any]:
        if bearer(request) != sandbox.secret("mercadopago_access_token"):
            raise Reply(401, error(401, "unauthorized", "invalid access token"))
        await sandbox.fault("mercadopago", "get_payment", request, error)
        payment = sandbox.state.mp_payments.get(payment_id)
        if payment is None:
            raise Reply(404, error(404, "not_found", "Payment not found"))
        return payment

    @api.post("/_sandbox/mercadopago/payments", status_code=201, tags=["control"])
    async def create_payment(new: NewPayment) -> dict[str, Any]:
        payments = sandbox.state.mp_payments
        payment_id = _new_id(payments)
        created = now_iso()
        payment = {
            "id": int(payment_id),
            "date_created": created,
            "date_approved": None,
            "date_last_updated": created,
            "live_mode": False,
            "operation_type": "regular_payment",
            "status": new.status,
            "status_detail": _DETAILS[new.status],
            "currency_id": new.currency,
            "transaction_amount": float(new.amount),
            "payment_method_id": new.payment_method_id,
            "payment_type_id": _PAYMENT_TYPES.get(new.payment_method_id, "credit_card"),
            "external_reference": new.external_reference,
            "description": "Entrega",
            "payer": {
                "id": None,
                "email": new.payer_email,
                "first_name": new.payer_first_name,
                "last_name": new.payer_last_name,
            },
            "metadata": new.metadata,
            "collector_id": USER_ID,
            "additional_info": {"items": _items(new)},
        }
        _set_status(payment, new.status)
        payments[payment_id] = payment
        return payment

    @api.post("/_sandbox/mercadopago/payments/{payment_id}/status", tags=["control"])
    async def change_status(payment_id: str, change: StatusChange) -> dict[str, Any]:
        payment = _payment(sandbox, payment_id)
        _set_status(payment, change.status)
        return payment

    @api.post("/_sandbox/mercadopago/payments/{payment_id}/notify", tags=["control"])
    async def notify(payment_id: str, options: Notify | None = None) -> dict[str, Any]:
        _payment(sandbox, payment_id)  # 404 for an unknown payment
        options = options or Notify()
        first = payment_id not in sandbox.state.mp_notified
        sandbox.state.mp_notified.add(payment_id)
        action = options.action or ("payment.created" if first else "payment.updated")
        request_id = str(uuid.uuid4())
        ts = str(int(time.time() * 1000) if options.ts_unit == "ms" else int(time.time()))
        signature = sign(
            sandbox.secret("mercadopago_webhook_secret"),
            data_id=payment_id,
            request_id=request_id,
            ts=ts,
        )
        body = {
            "id": int(secrets.randbelow(9 * 10**10) + 10**10),
            "live_mode": False,
            "type": "payment",
            "action": action,
            "api_version": "v1",
            "date_created": now_iso(),
            "user_id": USER_ID,
            "data": {"id": payment_id},
        }
        return await deliver(
            sandbox,
            "mercadopago",
            "/webhooks/mercadopago",
            params={"data.id": payment_id, "type": "payment"},
            json=body,
            headers={"x-signature": signature, "x-request-id": request_id},
        )

    return api


_DATE_FIELDS = ("date_created", "date_approved", "date_last_updated")
_RELATIVE = re.compile(r"^NOW(?:([+-])(\d+)(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|YEAR)S?)?$")
_UNIT_SECONDS = {
    "SECOND": 1,
    "MINUTE": 60,
    "HOUR": 3600,
    "DAY": 86400,
    "WEEK": 7 * 86400,
    "MONTH": 30 * 86400,
    "YEAR": 365 * 86400,
}
SEARCH_DEFAULT_LIMIT = 30
SEARCH_MAX_LIMIT = 1000


def _bad_request(message: str) -> Reply:
    return Reply(400, error(400, "bad_request", message))


def _moment(text: str, name: str) -> datetime:
    """An ISO 8601 instant (UTC when it names no zone) or MP's relative `NOW-2DAYS` form."""
    relative = _RELATIVE.match(text.strip().upper())
    if relative:
        sign, amount, unit = relative.groups()
        offset = timedelta(seconds=int(amount or 0) * _UNIT_SECONDS.get(unit or "SECOND", 1))
        return datetime.now(UTC) + (offset if sign == "+" else -offset)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad_request(f"{name} must be an ISO 8601 date or NOW-<n><UNIT>") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=65536)
def _stored(value: str) -> datetime:
    """A payment's own timestamp (parsed once: a search sorts every payment on every page)."""
    return _moment(value, "date")


def _when(payment: dict[str, Any], field: str) -> datetime | None:
    value = payment.get(field)
    return _stored(value) if value else None


def search(payments: list[dict[str, Any]], params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /v1/payments/search`: filters `status`, `external_reference`, a `range` date field
    between `begin_date` and `end_date`; `sort` + `criteria`; `offset` + `limit`."""
    if status := params.get("status"):
        payments = [p for p in payments if p["status"] in status.split(",")]
    if reference := params.get("external_reference"):
        payments = [p for p in payments if p.get("external_reference") == reference]
    field = params.get("range", "date_created")
    if field not in _DATE_FIELDS:
        raise _bad_request(f"range must be one of {', '.join(_DATE_FIELDS)}")
    begin, end = params.get("begin_date"), params.get("end_date")
    if begin or end:
        low = _moment(begin, "begin_date") if begin else None
        high = _moment(end, "end_date") if end else None
        payments = [
            p
            for p in payments
            if (moment := _when(p, field)) is not None
            and (low is None or moment >= low)
            and (high is None or moment <= high)
        ]
    sort = params.get("sort", "date_created")
    if sort not in (*_DATE_FIELDS, "id"):
        raise _bad_request(f"sort must be id or one of {', '.join(_DATE_FIELDS)}")
    criteria = params.get("criteria", "desc")
    if criteria not in ("asc", "desc"):
        raise _bad_request("criteria must be asc or desc")
    far = datetime.min.replace(tzinfo=UTC)
    payments = sorted(
        payments,
        key=lambda p: (p["id"],) if sort == "id" else (_when(p, sort) or far, p["id"]),
        reverse=criteria == "desc",
    )
    try:
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", SEARCH_DEFAULT_LIMIT))
    except ValueError:
        raise _bad_request("offset and limit must be integers") from None
    if offset < 0 or not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise _bad_request(f"offset must be >= 0 and limit between 1 and {SEARCH_MAX_LIMIT}")
    return {
        "paging": {"total": len(payments), "limit": limit, "offset": offset},
        "results": payments[offset : offset + limit],
    }


def _payment(sandbox: Sandbox, payment_id: str) -> dict[str, Any]:
    payment = sandbox.state.mp_payments.get(payment_id)
    if payment is None:
        raise Reply(404, {"error": {"code": "not_found", "message": "no such payment"}})
    return payment


def _items(new: NewPayment) -> list[dict[str, Any]]:
    """As MP answers them: `quantity` and `unit_price` are strings."""
    if new.product_id is None:
        return []
    return [
        {
            "id": new.product_id,
            "title": new.product_id,
            "description": None,
            "category_id": None,
            "quantity": "1",
            "unit_price": str(new.amount),
        }
    ]


def _set_status(payment: dict[str, Any], status: str) -> None:
    payment["status"] = status
    payment["status_detail"] = _DETAILS[status]
    payment["date_last_updated"] = now_iso()
    if status == "approved" and payment["date_approved"] is None:
        payment["date_approved"] = payment["date_last_updated"]


def _new_id(payments: dict[str, Any]) -> str:
    # Random, never reused after a reset: ids become Temporal workflow ids in tests.
    while True:
        candidate = str(secrets.randbelow(9 * 10**10) + 10**10)
        if candidate not in payments:
            return candidate
