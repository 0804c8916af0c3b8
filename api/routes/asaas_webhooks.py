"""POST /webhooks/asaas: payment events, recorded once each and handed to the payment's workflow.

The body is not signed, so nothing in it is acted on here: the event is recorded (deduplicated
on its id, kept whole), its payment id is handed to `asaas-payment:<payment id>` (signal-with-
start), and that workflow re-reads the payment from Asaas and applies it. A synchronous read
here would turn every Asaas outage into failed deliveries, and Asaas pauses the whole queue
after 15 of them. 200 only once both the record and the hand-off are durable; 503 otherwise,
so that Asaas sends again (the re-sent event is a duplicate record but is handed off again)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import validation
from api.deps import PoolDep, SettingsDep, get_temporal
from api.errors import ApiError, responses
from contracts.errors import ErrorCode
from db import subscriptions
from settings import secret_matches
from workflows.asaas_payment_client import hand_off_payment

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)
# The payment id becomes a workflow id. Asaas's are short ASCII (`pay_...`); anything else could
# never be handed off, and answering 503 would make Asaas re-send it forever.
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class AsaasPayment(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: validation.ProviderId
    customer: validation.ProviderId | None = None
    subscription: validation.ProviderId | None = None
    due_date: date | None = Field(default=None, alias="dueDate")


class AsaasEvent(BaseModel):
    # Ids are the dedupe key and reach the database: a NUL in one failed the insert on every
    # re-send, and Asaas pauses the whole queue after 15 failures.
    model_config = ConfigDict(extra="ignore")

    id: validation.ProviderId
    event: validation.ShortText
    payment: AsaasPayment | None = None


_ASAAS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "event"],
                    "properties": {
                        "id": {"type": "string", "pattern": validation.PROVIDER_ID_PATTERN},
                        "event": {"type": "string", "minLength": 1, "maxLength": 64},
                        "payment": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": {
                                    "type": "string",
                                    "pattern": validation.PROVIDER_ID_PATTERN,
                                },
                                "customer": {
                                    "type": "string",
                                    "pattern": validation.PROVIDER_ID_PATTERN,
                                },
                                "subscription": {
                                    "type": "string",
                                    "pattern": validation.PROVIDER_ID_PATTERN,
                                },
                                "dueDate": {"type": "string", "format": "date"},
                            },
                        },
                    },
                }
            }
        },
    }
}


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Field/message pairs, as the API's 422s give them (pydantic's own text has doc URLs)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "json_invalid":
            reason = err.get("ctx", {}).get("error")
            message = f"JSON malformado: {reason}" if reason else "JSON malformado"
            problems.append({"field": None, "message": message, "type": err["type"]})
            continue
        field = ".".join(str(part) for part in err["loc"]) or None
        problems.append({"field": field, "message": err["msg"], "type": err["type"]})
    return problems


@router.post("/asaas", responses=responses(401, 503), openapi_extra=_ASAAS_OPENAPI)
async def asaas_webhook(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    asaas_access_token: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """200 only once the event is recorded and handed off (Asaas counts nothing else as success)."""
    if not secret_matches(settings.secret("asaas_webhook_token"), asaas_access_token):
        raise ApiError(ErrorCode.INVALID_TOKEN, message="Token do webhook inválido")
    raw = await request.body()
    try:
        event = AsaasEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(ErrorCode.MALFORMED_EVENT, _problems(exc)) from exc
    payment = event.payment
    if payment is not None and not _PAYMENT_ID.fullmatch(payment.id):
        problem = {
            "field": "payment.id",
            "message": "Identificador de cobrança inválido",
            "type": "value_error",
        }
        raise ApiError(ErrorCode.MALFORMED_EVENT, [problem])
    payload: dict[str, Any] = json.loads(raw)  # kept whole: fields we ignore today may matter
    if validation.has_nul(payload):  # jsonb cannot hold it: the insert would fail on every re-send
        raise ApiError(ErrorCode.MALFORMED_EVENT, message="Evento com caractere nulo (\\u0000)")
    try:
        async with pool.connection() as conn, conn.transaction():
            recorded = await subscriptions.record_event(
                conn,
                event_id=event.id,
                event=event.event,
                payment_id=payment.id if payment else None,
                subscription_id=payment.subscription if payment else None,
                customer_id=payment.customer if payment else None,
                payload=payload,
            )
    except psycopg.Error as exc:
        raise ApiError(ErrorCode.NOT_RECORDED, type(exc).__name__) from exc
    if payment is not None:
        # Only the payment id is taken from the body: the workflow reads the rest from Asaas.
        temporal = await get_temporal(request)
        try:
            await hand_off_payment(
                temporal,
                payment_id=payment.id,
                event=event.event,
                task_queue=settings.temporal_task_queue,
            )
        except Exception as exc:
            log.warning("hand-off of Asaas payment %s failed: %s", payment.id, exc)
            raise ApiError(ErrorCode.HANDOFF_FAILED) from exc
    return {"status": "recorded" if recorded else "duplicate"}
