"""Operators' view of purchases: list, inspect, and "Resincronizar" (retry) an order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field
from temporalio.service import RPCError, RPCStatusCode

from api import validation
from api.auth import AdminOnly, Operator
from api.deps import PoolDep, TemporalDep
from api.errors import ApiError, responses
from contracts.errors import ErrorCode
from contracts.purchases import STAGES, CancelRequest
from db import operations, order_views, orders
from db.order_views import FINISHED_STAGES
from telemetry import events
from workflows.purchase_client import live_status, request_cancel, request_retry

router = APIRouter(
    prefix="/api/v1/admin/orders",
    tags=["admin"],
    dependencies=[AdminOnly],
    responses=responses(401),
)
# Order ids reach SQL and Temporal: refuse anything else at the edge (a NUL failed in PostgreSQL).
OrderIdPath = Annotated[validation.OrderKey, Path()]

_NOT_FOUND = ApiError(ErrorCode.ORDER_NOT_FOUND)


async def resolve_order_id(pool: PoolDep, key: str) -> tuple[str, bool]:
    async with pool.connection() as conn:
        resolved = await order_views.resolve_order_id(conn, key)
    if resolved is None:
        raise _NOT_FOUND
    return resolved


class RetryRequest(BaseModel):
    reason: validation.Text | None = None


class CancelOrderRequest(BaseModel):
    reason: validation.Text = Field(description="Why, for the record")


async def record_action(
    pool: PoolDep, action: str, order_id: str, actor: str, reason: str | None
) -> None:
    async with pool.connection() as conn:
        await operations.record_action(
            conn, action=action, target=order_id, actor=actor, via="api", reason=reason
        )
    events.operator_action(action, actor, order_id, reason)


def _signal_failed(exc: RPCError, recorded: bool) -> ApiError:
    if exc.status == RPCStatusCode.NOT_FOUND and not recorded:
        return _NOT_FOUND
    if exc.status == RPCStatusCode.NOT_FOUND:
        return ApiError(ErrorCode.ORDER_NOT_RUNNING)
    return ApiError(ErrorCode.TEMPORAL_UNAVAILABLE)


@router.get("", summary="List orders, optionally in one stage")
async def list_orders(
    pool: PoolDep,
    stage: str | None = Query(default=None, json_schema_extra={"enum": list(STAGES)}),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    if stage is not None and stage not in STAGES:
        raise ApiError(
            ErrorCode.VALIDATION_ERROR, {"stages": list(STAGES)}, message="Etapa desconhecida"
        )
    async with pool.connection() as conn:
        found = await orders.list_orders(conn, stage=stage, limit=limit)
    return {"orders": [order_views.order_view(order) for order in found]}


@router.get(
    "/{order_id}",
    summary="One order with its workflow status, audit trail and e-mails",
    responses=responses(404, 503),
)
async def show_order(order_id: OrderIdPath, pool: PoolDep, temporal: TemporalDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        described = await order_views.describe_order(conn, order_id)
    if described is None:
        raise _NOT_FOUND
    described["workflow"] = await live_status(temporal, described["order"]["order_id"])
    return described


@router.post(
    "/{order_id}/retry",
    status_code=202,
    summary="Resincronizar: retry the order now",
    responses=responses(404, 409, 503),
)
async def retry_order(
    order_id: OrderIdPath,
    pool: PoolDep,
    temporal: TemporalDep,
    operator: Operator,
    body: Annotated[RetryRequest | None, Body()] = None,
) -> dict[str, Any]:
    workflow_id, recorded = await resolve_order_id(pool, order_id)
    try:
        await request_retry(temporal, workflow_id)
    except RPCError as exc:
        raise _signal_failed(exc, recorded) from exc
    await record_action(pool, "retry", workflow_id, operator, body.reason if body else None)
    return {"order_id": workflow_id, "retry_requested": True}


@router.post(
    "/{order_id}/cancel",
    status_code=202,
    summary="End an order that will never succeed",
    description="The order becomes `cancelled` at its next wait (awaiting payment, parked in a "
    "failed stage). A completed, revoked or cancelled order answers 409 `order_finished`: "
    "cancelling never takes access away (a refund at the provider does).",
    responses=responses(404, 409, 503),
)
async def cancel_order(
    order_id: OrderIdPath,
    body: CancelOrderRequest,
    pool: PoolDep,
    temporal: TemporalDep,
    operator: Operator,
) -> dict[str, Any]:
    workflow_id, recorded = await resolve_order_id(pool, order_id)
    async with pool.connection() as conn:
        order = await orders.get_order(conn, workflow_id)
    if order is not None and order.stage in FINISHED_STAGES:
        raise ApiError(ErrorCode.ORDER_FINISHED, {"stage": order.stage})
    try:
        await request_cancel(
            temporal, workflow_id, CancelRequest(reason=body.reason, actor=operator)
        )
    except RPCError as exc:
        raise _signal_failed(exc, recorded) from exc
    await record_action(pool, "cancel", workflow_id, operator, body.reason)
    return {"order_id": workflow_id, "cancel_requested": True}
