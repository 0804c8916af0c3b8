"""Handing an Asaas payment to its workflow from outside (the webhook, reconciliation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from contracts.asaas import SIGNAL, PaymentRef, workflow_id
from workflows.asaas_payment import AsaasPaymentWorkflow

# Well inside the time Asaas waits for an answer; past it the gateway answers 503 and Asaas
# sends the event again.
HANDOFF_TIMEOUT = timedelta(seconds=5)


async def hand_off_payment(
    client: Client, *, payment_id: str, event: str, task_queue: str
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start the payment's workflow. Once this returns the event is in Temporal's
    history, so the caller may acknowledge it; duplicates join the running workflow."""
    return await client.start_workflow(
        AsaasPaymentWorkflow.run,
        PaymentRef(payment_id=payment_id),
        id=workflow_id(payment_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=SIGNAL,
        start_signal_args=[event],
        rpc_timeout=HANDOFF_TIMEOUT,
    )
