"""AppMax has no API Entrega calls; the sandbox only sends its Apphooks to the gateway."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from providers.appmax import envelope
from sandbox.core import Sandbox, now_iso
from sandbox.mercadopago import DEFAULT_PRODUCT
from sandbox.webhooks import deliver

# `data.status` as AppMax words it for each event; others read "pendente".
_STATUS = {
    "OrderApproved": "aprovado",
    "OrderPaid": "aprovado",
    "OrderPaidByPix": "aprovado",
    "OrderRefund": "estornado",
    "OrderChargeBackInTreatment": "chargeback_em_tratativa",
}


class Customer(BaseModel):
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    phone: str | None = None


class Order(BaseModel):
    """An Apphook to send. Give `order_id` to send another event for an order sent before; its
    customer, total and payment type are reused unless given again."""

    event: str
    customer: Customer | None = None
    total: Decimal | None = Field(default=None, gt=0)
    payment_type: str | None = None
    order_id: int | None = None
    # The order's one product (`data.products[]`, `{sku, name, qty, price}`); null sends the
    # "Standard" template as AppMax documents it, with no product list.
    product_id: str | None = DEFAULT_PRODUCT
    # The products' value before shipping and card interest (default: the total).
    total_products: Decimal | None = Field(default=None, gt=0)


def control_router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/appmax", tags=["control"])

    @api.post("/orders")
    async def send_apphook(order: Order) -> dict[str, Any]:
        orders = sandbox.state.appmax_orders
        order_id = order.order_id or secrets.randbelow(9 * 10**8) + 10**8
        known = orders.get(order_id, {})
        total = float(order.total) if order.total else known.get("total", 49.9)
        value = (
            float(order.total_products)
            if order.total_products
            else known.get("total_products", total)
        )
        if order_id in orders and "product_id" not in order.model_fields_set:
            products = known.get("products")
        else:
            products = _products(order.product_id, value)
        data = {
            "id": order_id,
            "total": total,
            "total_products": value,
            "status": _STATUS.get(order.event, "pendente"),
            "payment_type": order.payment_type or known.get("payment_type", "Pix"),
            "created_at": known.get("created_at", now_iso()),
            "customer": (
                order.customer.model_dump() if order.customer else known.get("customer", {})
            ),
        }
        if products is not None:
            data["products"] = products
        orders[order_id] = data
        token = sandbox.secret("appmax_webhook_token")
        result = await deliver(
            sandbox,
            "appmax",
            "/webhooks/appmax",
            params={"token": token},
            json=envelope(order.event, data),
        )
        return {"order_id": order_id, **result}

    return api


def _products(product_id: str | None, price: float) -> list[dict[str, Any]] | None:
    if product_id is None:
        return None
    return [{"sku": product_id, "name": product_id, "qty": 1, "price": price}]
