"""Starting, signalling and reading purchase workflows from outside (API, CLI, benchmarks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from contracts import search_attributes
from contracts.purchases import (
    CancelRequest,
    PaymentNotice,
    Provider,
    PurchaseConfig,
    PurchaseInput,
    PurchaseStatus,
    workflow_id,
)
from settings import Settings
from workflows.purchase import PurchaseWorkflow

# Long enough for a healthy server under load, short enough for the provider's own deadline
# (Mercado Pago waits 22 s): past it the gateway answers 503 and the provider re-sends.
HANDOFF_TIMEOUT = timedelta(seconds=5)


def purchase_config(settings: Settings) -> PurchaseConfig:
    """The settings a new purchase workflow is started with (fixed for its whole run)."""
    return PurchaseConfig(
        retry_schedule=settings.retry_schedule,
        payment_deadline=settings.purchase_payment_deadline,
        revocation_window=settings.purchase_revocation_window,
        step_attempts=settings.purchase_step_attempts,
        step_initial_interval=settings.purchase_step_initial_interval_seconds,
        step_timeout=settings.purchase_step_timeout_seconds,
        email_task_queue=settings.email_task_queue,
    )


async def hand_off(
    client: Client,
    *,
    provider: Provider,
    provider_order_id: str,
    notice: PaymentNotice,
    config: PurchaseConfig,
    task_queue: str,
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start: the order's one workflow gets the notice, started if need be.

    Duplicates join the running workflow (id-conflict policy USE_EXISTING); once this returns,
    the notice is in Temporal's history, so the caller may acknowledge it.
    """
    order_id = workflow_id(provider, provider_order_id)
    return await client.start_workflow(
        PurchaseWorkflow.run,
        PurchaseInput(provider=provider, provider_order_id=provider_order_id, config=config),
        id=order_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="payment_updated",
        start_signal_args=[notice],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.ORDER_ID, order_id),
                SearchAttributePair(search_attributes.STAGE, "awaiting_payment"),
            ]
        ),
        rpc_timeout=HANDOFF_TIMEOUT,
    )


async def request_retry(client: Client, order_id: str) -> None:
    """The operator's "Resincronizar": cut any wait short and try the failed step again."""
    await client.get_workflow_handle(order_id).signal("retry", rpc_timeout=HANDOFF_TIMEOUT)


async def request_cancel(client: Client, order_id: str, request: CancelRequest) -> None:
    """The operator ends an order that will never succeed; it stops at its next wait."""
    await client.get_workflow_handle(order_id).signal(
        "cancel", request, rpc_timeout=HANDOFF_TIMEOUT
    )


async def query_status(client: Client, order_id: str) -> PurchaseStatus:
    status: PurchaseStatus = await client.get_workflow_handle(order_id).query(
        "status", result_type=PurchaseStatus, rpc_timeout=HANDOFF_TIMEOUT
    )
    return status


async def live_status(client: Client | None, order_id: str) -> dict[str, Any] | None:
    """The workflow's own `status` query, or None when no workflow can answer."""
    if client is None:
        return None
    try:
        return (await query_status(client, order_id)).model_dump(mode="json")
    except Exception:  # closed, unknown or unreachable: the database still tells the story
        return None
