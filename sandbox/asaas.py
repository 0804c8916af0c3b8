"""Asaas `/v3`: customers and subscriptions, with its `errors[]` shape and CPF/CNPJ validation,
plus control endpoints that send Asaas payment events to the gateway."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from validate_docbr import CNPJ, CPF

from sandbox.core import Reply, Sandbox, brasilia_today, digits, json_body, now_iso
from sandbox.webhooks import deliver

BILLING_TYPES = frozenset({"BOLETO", "CREDIT_CARD", "PIX", "UNDEFINED"})
CYCLES = frozenset(
    {"WEEKLY", "BIWEEKLY", "MONTHLY", "BIMONTHLY", "QUARTERLY", "SEMIANNUALLY", "YEARLY"}
)
DEFAULT_LIMIT, MAX_LIMIT = 10, 100
PaymentEventName = Literal[
    "PAYMENT_CREATED",
    "PAYMENT_UPDATED",
    "PAYMENT_CONFIRMED",
    "PAYMENT_RECEIVED",
    "PAYMENT_OVERDUE",
    "PAYMENT_REFUNDED",
    "PAYMENT_DELETED",
]
# The status a payment takes when each event is sent (None: unchanged).
EVENT_STATUS: dict[str, str | None] = {
    "PAYMENT_CREATED": "PENDING",
    "PAYMENT_UPDATED": None,
    "PAYMENT_CONFIRMED": "CONFIRMED",
    "PAYMENT_RECEIVED": "RECEIVED",
    "PAYMENT_OVERDUE": "OVERDUE",
    "PAYMENT_REFUNDED": "REFUNDED",
    "PAYMENT_DELETED": None,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CPF, _CNPJ = CPF(), CNPJ()


def error(status: int, code: str, description: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "description": description}]}


def invalid(code: str, description: str) -> Reply:
    return Reply(400, error(400, code, description))


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        offset = max(0, int(request.query_params.get("offset", 0)))
        limit = min(MAX_LIMIT, max(1, int(request.query_params.get("limit", DEFAULT_LIMIT))))
    except ValueError:
        raise invalid("invalid_parameter", "offset e limit devem ser números inteiros.") from None
    data = items[offset : offset + limit]
    return {
        "object": "list",
        "hasMore": offset + len(data) < len(items),
        "totalCount": len(items),
        "limit": limit,
        "offset": offset,
        "data": data,
    }


def _filtered(request: Request, items: list[dict[str, Any]], fields: tuple[str, ...]) -> list[Any]:
    for name in fields:
        wanted = request.query_params.get(name)
        if wanted is None:
            continue
        if name == "cpfCnpj":
            wanted = re.sub(r"\D", "", wanted)
        if name == "name":
            items = [i for i in items if wanted.lower() in (i.get("name") or "").lower()]
        else:
            items = [i for i in items if i.get(name) == wanted]
    return items


# Date-range filters of GET /v3/payments: (query name, payment field, comparison).
_DATE_FILTERS = tuple(
    (f"{field}[{bound}]", field, bound)
    for field in ("dateCreated", "paymentDate", "dueDate")
    for bound in ("ge", "le")
)


def _payments_filtered(request: Request, payments: list[dict[str, Any]]) -> list[Any]:
    fields = ("customer", "subscription", "status", "externalReference", "billingType")
    payments = _filtered(request, payments, fields)
    for name, field, bound in _DATE_FILTERS:
        wanted = request.query_params.get(name)
        if wanted is None:
            continue
        try:
            limit = date.fromisoformat(wanted)
        except ValueError:
            raise invalid("invalid_parameter", f"{name} deve ser uma data (yyyy-MM-dd).") from None
        payments = [
            p
            for p in payments
            if p.get(field)
            and (
                date.fromisoformat(p[field]) >= limit
                if bound == "ge"
                else date.fromisoformat(p[field]) <= limit
            )
        ]
    return payments


class NextPayment(BaseModel):
    """The body of the subscription-payments control endpoint: a charge already paid."""

    status: Literal["CONFIRMED", "RECEIVED"]
    dueDate: date | None = None  # Asaas's field name


class PaymentEvent(BaseModel):
    """An Asaas event for a payment; for an unknown payment id, `subscription` creates it."""

    event: PaymentEventName
    subscription: str | None = None


def router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/asaas/v3", tags=["asaas"])

    def authenticate(request: Request) -> None:
        if request.headers.get("access_token") != sandbox.secret("asaas_api_key"):
            raise Reply(
                401, error(401, "invalid_access_token", "A chave de API fornecida é inválida")
            )
        if not request.headers.get("user-agent"):
            raise invalid("invalid_user_agent", "O header User-Agent é obrigatório.")

    # --- customers -------------------------------------------------------------------------

    @api.get("/customers")
    async def list_customers(request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "list_customers", request, error)
        customers = list(sandbox.state.asaas_customers.values())
        fields = ("name", "email", "cpfCnpj", "externalReference")
        return _page(request, _filtered(request, customers, fields))

    @api.post("/customers")
    async def create_customer(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request, error)
        await sandbox.fault("asaas", "create_customer", request, error)
        name = str(body.get("name") or "").strip()
        if not name:
            raise invalid("invalid_name", "O campo nome deve ser informado.")
        document = re.sub(r"\D", "", str(body.get("cpfCnpj") or ""))
        if not document:
            raise invalid("invalid_cpfCnpj", "O campo CPF/CNPJ deve ser informado.")
        valid = _CPF.validate(document) if len(document) == 11 else _CNPJ.validate(document)
        if not valid:
            raise invalid("invalid_cpfCnpj", "O CPF/CNPJ informado é inválido.")
        email = body.get("email")
        if email and not _EMAIL.match(str(email)):
            raise invalid("invalid_email", "O email informado é inválido.")
        mobile = re.sub(r"\D", "", str(body.get("mobilePhone") or ""))
        if mobile.startswith("55") and len(mobile) > 11:
            mobile = mobile[2:]
        if mobile and len(mobile) not in (10, 11):
            raise invalid("invalid_mobilePhone", "O celular informado é inválido.")
        customer_id = f"cus_{digits(12)}"
        customer = {
            "object": "customer",
            "id": customer_id,
            "dateCreated": brasilia_today().isoformat(),
            "name": name,
            "email": email,
            "phone": None,
            "mobilePhone": mobile or None,
            "cpfCnpj": document,
            "personType": "FISICA" if len(document) == 11 else "JURIDICA",
            "deleted": False,
            "externalReference": body.get("externalReference"),
            "notificationDisabled": bool(body.get("notificationDisabled", False)),
        }
        sandbox.state.asaas_customers[customer_id] = customer
        return customer

    @api.get("/customers/{customer_id}")
    async def get_customer(customer_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        return _customer(sandbox, customer_id)

    @api.delete("/customers/{customer_id}")
    async def delete_customer(customer_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "delete_customer", request, error)
        _customer(sandbox, customer_id)
        state = sandbox.state
        del state.asaas_customers[customer_id]
        # Asaas removes the customer's subscriptions and pending charges with it.
        for sub_id in [
            s for s, sub in state.asaas_subscriptions.items() if sub["customer"] == customer_id
        ]:
            del state.asaas_subscriptions[sub_id]
        for pay_id, payment in list(state.asaas_payments.items()):
            if payment["customer"] == customer_id and payment["status"] == "PENDING":
                del state.asaas_payments[pay_id]
        return {"deleted": True, "id": customer_id}

    # --- subscriptions ---------------------------------------------------------------------

    @api.get("/subscriptions")
    async def list_subscriptions(request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "list_subscriptions", request, error)
        subscriptions = list(sandbox.state.asaas_subscriptions.values())
        fields = ("customer", "externalReference", "billingType", "status")
        return _page(request, _filtered(request, subscriptions, fields))

    @api.post("/subscriptions")
    async def create_subscription(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request, error)
        await sandbox.fault("asaas", "create_subscription", request, error)
        customer_id = str(body.get("customer") or "")
        if customer_id not in sandbox.state.asaas_customers:
            raise invalid("invalid_customer", "Cliente inválido ou não informado.")
        billing_type = body.get("billingType")
        if billing_type not in BILLING_TYPES:
            raise invalid("invalid_billingType", "Forma de pagamento inválida.")
        try:
            value = Decimal(str(body.get("value")))
        except InvalidOperation:
            value = Decimal(0)
        if not value.is_finite() or value <= 0:
            raise invalid("invalid_value", "O valor da assinatura deve ser maior que zero.")
        try:
            due = datetime.strptime(str(body.get("nextDueDate")), "%Y-%m-%d").date()
        except ValueError:
            raise invalid("invalid_nextDueDate", "Data de vencimento inválida.") from None
        cycle = body.get("cycle")
        if cycle not in CYCLES:
            raise invalid("invalid_cycle", "Periodicidade inválida.")
        subscription_id = f"sub_{secrets.token_hex(8)}"
        subscription = {
            "object": "subscription",
            "id": subscription_id,
            "dateCreated": brasilia_today().isoformat(),
            "customer": customer_id,
            "billingType": billing_type,
            "cycle": cycle,
            "value": float(value),
            "nextDueDate": due.isoformat(),
            "description": body.get("description"),
            "status": "ACTIVE",
            "externalReference": body.get("externalReference"),
            "deleted": False,
        }
        sandbox.state.asaas_subscriptions[subscription_id] = subscription
        created = dict(subscription)
        # Asaas generates the first charge at once and moves nextDueDate one cycle on.
        _new_payment(sandbox, subscription, due.isoformat())
        return created

    @api.get("/subscriptions/{subscription_id}")
    async def get_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "get_subscription", request, error)
        subscription = sandbox.state.asaas_subscriptions.get(subscription_id)
        if subscription is None:
            raise Reply(404, error(404, "not_found", "Assinatura não encontrada."))
        return subscription

    # --- payments --------------------------------------------------------------------------

    @api.get("/payments")
    async def list_payments(request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "list_payments", request, error)
        payments = list(sandbox.state.asaas_payments.values())
        return _page(request, _payments_filtered(request, payments))

    @api.get("/payments/{payment_id}")
    async def get_payment(payment_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "get_payment", request, error)
        payment = sandbox.state.asaas_payments.get(payment_id)
        if payment is None:
            raise Reply(404, error(404, "not_found", "Cobrança não encontrada."))
        return payment

    @api.delete("/subscriptions/{subscription_id}")
    async def delete_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
        authenticate(request)
        await sandbox.fault("asaas", "delete_subscription", request, error)
        if sandbox.state.asaas_subscriptions.pop(subscription_id, None) is None:
            raise Reply(404, error(404, "not_found", "Assinatura não encontrada."))
        return {"deleted": True, "id": subscription_id}

    return api


def control_router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/asaas", tags=["control"])

    @api.post("/subscriptions/{subscription_id}/payments", status_code=201)
    async def next_payment(subscription_id: str, paid: NextPayment | None = None) -> dict[str, Any]:
        """The subscription's next charge (a renewal), due on its nextDueDate. With a body, the
        charge is created already paid (due on `dueDate` if given) and its PAYMENT_CONFIRMED /
        PAYMENT_RECEIVED goes to the gateway; the answer is the payment either way, whatever
        the gateway did with the event."""
        subscription = sandbox.state.asaas_subscriptions.get(subscription_id)
        if subscription is None:
            raise Reply(404, {"error": {"code": "not_found", "message": "no such subscription"}})
        if paid is None:
            return _new_payment(sandbox, subscription, subscription["nextDueDate"])
        due = paid.dueDate.isoformat() if paid.dueDate else subscription["nextDueDate"]
        payment = _new_payment(sandbox, subscription, due)
        _mark(payment, paid.status)
        try:
            await _send(sandbox, f"PAYMENT_{paid.status}", payment)
        except Reply:
            pass  # an unreachable gateway is Asaas's problem to retry, not the caller's
        return payment

    @api.post("/payments/{payment_id}/events")
    async def send_event(payment_id: str, event: PaymentEvent) -> dict[str, Any]:
        state = sandbox.state
        payment = state.asaas_payments.get(payment_id)
        if payment is None:
            subscription = state.asaas_subscriptions.get(event.subscription or "")
            if subscription is None:
                raise Reply(
                    404,
                    {"error": {"code": "not_found", "message": "no such payment or subscription"}},
                )
            payment = _new_payment(sandbox, subscription, subscription["nextDueDate"], payment_id)
        status = EVENT_STATUS[event.event]
        if status:
            _mark(payment, status)
        return await _send(sandbox, event.event, payment)

    return api


def _mark(payment: dict[str, Any], status: str) -> None:
    payment["status"] = status
    if status in ("CONFIRMED", "RECEIVED"):
        payment["confirmedDate"] = payment["confirmedDate"] or brasilia_today().isoformat()
        if status == "RECEIVED":
            payment["paymentDate"] = brasilia_today().isoformat()


async def _send(sandbox: Sandbox, event: str, payment: dict[str, Any]) -> dict[str, Any]:
    body = {
        "id": f"evt_{secrets.token_hex(16)}",
        "event": event,
        "dateCreated": now_iso(),
        "payment": dict(payment),
    }
    return await deliver(
        sandbox,
        "asaas",
        "/webhooks/asaas",
        json=body,
        headers={"asaas-access-token": sandbox.secret("asaas_webhook_token")},
    )


def _customer(sandbox: Sandbox, customer_id: str) -> dict[str, Any]:
    customer = sandbox.state.asaas_customers.get(customer_id)
    if customer is None:
        raise Reply(404, error(404, "not_found", "Cliente não encontrado."))
    return customer


def _new_payment(
    sandbox: Sandbox, subscription: dict[str, Any], due: str, payment_id: str | None = None
) -> dict[str, Any]:
    """A PENDING charge of the subscription; the subscription's nextDueDate moves one cycle on."""
    payment_id = payment_id or f"pay_{secrets.token_hex(8)}"
    payment = {
        "object": "payment",
        "id": payment_id,
        "dateCreated": brasilia_today().isoformat(),
        "customer": subscription["customer"],
        "subscription": subscription["id"],
        "value": subscription["value"],
        "netValue": subscription["value"],
        "billingType": subscription["billingType"],
        "status": "PENDING",
        "dueDate": due,
        "confirmedDate": None,
        "paymentDate": None,
        "description": subscription["description"],
        "externalReference": subscription["externalReference"],
        "deleted": False,
    }
    sandbox.state.asaas_payments[payment_id] = payment
    subscription["nextDueDate"] = _advance(
        date.fromisoformat(due), subscription["cycle"]
    ).isoformat()
    return payment


def _advance(day: date, cycle: str) -> date:
    if cycle == "WEEKLY":
        return day + timedelta(days=7)
    if cycle == "BIWEEKLY":
        return day + timedelta(days=14)
    months = {"MONTHLY": 1, "BIMONTHLY": 2, "QUARTERLY": 3, "SEMIANNUALLY": 6, "YEARLY": 12}[cycle]
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")
