"""The purchase webhook gateway: authenticate, then hand the notice to the order's workflow.

Only a durable notice earns a 2xx: its signal in Temporal's history, or, when Temporal is slower
than WEBHOOK_HANDOFF_BUDGET_SECONDS, its row in the intake inbox, forwarded to Temporal by the
API (api/intake.py). Anything short of that answers 503 so that the provider sends again.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import validation
from api.deps import PoolDep, SettingsDep, get_temporal
from api.errors import ApiError, responses
from api.intake import Intake
from contracts.errors import ErrorCode
from contracts.purchases import (
    APPMAX_STATES,
    Payment,
    PaymentItem,
    PaymentNotice,
    Provider,
    workflow_id,
)
from db import orders
from providers.appmax import Apphook, ApphookCustomer, ApphookOrder, verify_token
from providers.mercadopago_signature import InvalidSignature, verify

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


class MercadoPagoNotification(BaseModel):
    """The body fields the gateway reads; the payment id comes from the signed query string."""

    model_config = ConfigDict(extra="allow")

    type: validation.ShortText | None = None
    action: validation.ShortText | None = None


class CheckedCustomer(ApphookCustomer):
    firstname: validation.PersonName | None = None
    lastname: validation.PersonName | None = None
    email: validation.ProviderEmail | None = None
    phone: validation.ShortText | None = None


class CheckedOrder(ApphookOrder):
    # The order id becomes the workflow id `purchase:appmax:<id>`: safe characters, bounded.
    id: validation.ProviderId
    total: Annotated[Decimal, Field(ge=0, le=10**9, allow_inf_nan=False)] | None = None
    status: validation.ShortText | None = None
    payment_type: validation.ShortText | None = None
    customer: CheckedCustomer = Field(default_factory=CheckedCustomer)


class CheckedApphook(Apphook):
    """An Apphook whose every field the workflow and the database will accept: a NUL in a
    name was acknowledged with 200 and then failed every write of the order's stage."""

    event: validation.ShortText
    event_type: str | None = Field(default="", max_length=64)
    data: CheckedOrder


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined, for `openapi_extra`."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _json_request(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _inline(model.model_json_schema())}},
    }


_MP_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "data.id",
            "in": "query",
            "required": False,
            "description": "The payment id; part of the signed manifest",
            "schema": {"type": "string", "pattern": validation.PROVIDER_ID_PATTERN},
        },
        {"name": "type", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "x-signature",
            "in": "header",
            "required": True,
            "description": "`ts=<integer>,v1=<hex HMAC-SHA256>`",
            "schema": {"type": "string"},
        },
        {
            "name": "x-request-id",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": validation.PROVIDER_ID_PATTERN},
        },
    ],
    "requestBody": _json_request(MercadoPagoNotification),
}
_APPMAX_OPENAPI: dict[str, Any] = {"requestBody": _json_request(CheckedApphook)}


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(ErrorCode.MALFORMED_JSON) from None


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Field, message and type of each problem: never the input (it may hold anything)."""
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or None,
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def _deliver(
    request: Request,
    claim: orders.Claim,
    *,
    provider: Provider,
    provider_order_id: str,
    notice: PaymentNotice,
) -> dict[str, str]:
    """Make the notice durable (in Temporal, or in the intake inbox when Temporal is slower than
    the budget: api/intake.py), with the claim's transaction."""
    client = await get_temporal(request)
    intake: Intake = request.app.state.intake
    try:
        await intake.deliver(
            claim,
            client,
            provider=provider,
            provider_order_id=provider_order_id,
            notice=notice,
        )
    except Exception as exc:
        log.warning("hand-off of %s %s failed: %s", provider, provider_order_id, exc)
        # The provider re-sends on 503; transport details stay in our logs, not in the answer.
        raise ApiError(ErrorCode.HANDOFF_FAILED) from exc
    return {"status": "accepted", "order_id": workflow_id(provider, provider_order_id)}


@router.post(
    "/mercadopago",
    summary="Mercado Pago notification",
    responses=responses(401, 503),
    openapi_extra=_MP_OPENAPI,
)
async def mercadopago_notification(
    request: Request, settings: SettingsDep, pool: PoolDep
) -> dict[str, str]:
    """Verify `x-signature` over the query's `data.id`, then signal-with-start the order."""
    data_id = request.query_params.get("data.id")
    try:
        signature = verify(
            settings.secret("mercadopago_webhook_secret"),
            x_signature=request.headers.get("x-signature"),
            x_request_id=request.headers.get("x-request-id"),
            data_id=data_id,
            now=time.time(),
            tolerance_seconds=settings.mercadopago_signature_tolerance_seconds.total_seconds(),
        )
    except InvalidSignature as exc:
        raise ApiError(ErrorCode.INVALID_SIGNATURE, exc.reason) from None

    body = _json_body(await request.body())
    notification = MercadoPagoNotification()
    if isinstance(body, dict):
        try:
            notification = MercadoPagoNotification.model_validate(body)
        except ValidationError as exc:
            raise ApiError(ErrorCode.INVALID_PAYLOAD, _problems(exc)) from None
    topic = request.query_params.get("type") or request.query_params.get("topic")
    if topic is None:
        topic = notification.type
    if topic != "payment":
        return {"status": "ignored"}
    if not data_id:
        raise ApiError(ErrorCode.MISSING_PAYMENT_ID)

    # A signature is good once: a captured notification sent again within the window is refused.
    # Old ones are forgotten by the `prune-webhook-signatures` schedule.
    # The claim commits only with the hand-off: one that fails, or a request or process that dies
    # during it, leaves the signature unused for Mercado Pago's re-send.
    async with orders.signature_once(pool, signature) as claim:
        if not claim.fresh:
            raise ApiError(ErrorCode.INVALID_SIGNATURE, "signature already used")
        return await _deliver(
            request,
            claim,
            provider="mercadopago",
            provider_order_id=data_id,
            notice=PaymentNotice(action=str(notification.action or "payment")),
        )


@router.post(
    "/appmax",
    summary="AppMax Apphook",
    responses=responses(401, 503),
    openapi_extra=_APPMAX_OPENAPI,
)
async def appmax_hook(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    token: str | None = Query(default=None, description="The shared secret in the hook's URL"),
) -> dict[str, str]:
    """Check the URL token, then hand granting and revoking events to the order's workflow,
    each (event, order id) once."""
    if not verify_token(settings.secret("appmax_webhook_token"), token):
        raise ApiError(ErrorCode.INVALID_TOKEN)
    try:
        hook = CheckedApphook.model_validate(_json_body(await request.body()))
    except ValidationError as exc:
        raise ApiError(
            ErrorCode.INVALID_PAYLOAD, _problems(exc), message="Apphook inválido"
        ) from None
    state = APPMAX_STATES.get(hook.event)
    if state is None:
        return {"status": "ignored"}
    customer = hook.data.customer
    name = " ".join(part for part in (customer.firstname, customer.lastname) if part) or None
    payment = Payment(
        state=state,
        provider_status=hook.data.status or hook.event,
        email=customer.email,
        name=name,
        phone=customer.phone,
        amount=hook.data.total,
        payment_method=hook.data.payment_type,
        **_apphook_purchase(hook),
    )
    # docs/providers.md: dedupe on (event, order id), with no expiry. A re-sent Apphook is answered
    # 200 and not delivered again. The claim commits only after the hand-off is in Temporal: if
    # the hand-off fails, or the request or the process dies during it, the claim rolls back and
    # AppMax's re-send is delivered (a same pair arriving meanwhile waits for the outcome).
    async with orders.appmax_event_once(pool, hook.event, hook.data.id) as claim:
        if not claim.fresh:
            return {"status": "duplicate", "order_id": workflow_id("appmax", hook.data.id)}
        return await _deliver(
            request,
            claim,
            provider="appmax",
            provider_order_id=hook.data.id,
            notice=PaymentNotice(action=hook.event, payment=payment),
        )


# AppMax is Brazilian: a timestamp without a zone is read as Brasília time (no DST since 2019).
_BRASILIA = timezone(timedelta(hours=-3))


def _apphook_purchase(hook: Apphook) -> dict[str, Any]:
    """What the Apphook says was bought, and when, for matching against the catalogue."""
    created_at = None
    if hook.data.created_at:
        try:
            created_at = datetime.fromisoformat(hook.data.created_at)
        except ValueError:
            created_at = None
    if created_at is None:
        created_at = datetime.now(UTC)  # received now: AppMax sends as the order is paid
    elif created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=_BRASILIA)
    items = [
        PaymentItem(
            product_id=p.sku,
            title=p.name,
            quantity=1 if p.qty is None else p.qty,
            unit_price=p.price,
        )
        for p in hook.data.products or []
    ]
    return {
        "items": items,
        "created_at": created_at,
        "products_amount": hook.data.total_products,
    }
