"""Record the histories of the reconciliation workflows that `test_replay.py` replays.

    .venv/bin/python -m tests.reconcile.record_histories

Each scenario runs on the time-skipping server with fake activities. A committed history is
never overwritten (it is what running workflows look like): delete it first, on purpose, and
say so in the commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from contracts.reconcile import (
    ASAAS_PAGE,
    FIND_ORPHANS,
    MERCADOPAGO_PAGE,
    PRUNE_SIGNATURES,
    OrphanFinding,
    OrphansInput,
    OrphansResult,
    PageRequest,
    PageResult,
    PruneInput,
    ReconcileInput,
)
from tests.support import recording_env
from workflows.prune_signatures import PruneWebhookSignaturesWorkflow
from workflows.reconcile_asaas import ReconcileAsaasWorkflow
from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow
from workflows.reconcile_orphans import ReconcileOrphansWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"


@activity.defn(name=MERCADOPAGO_PAGE)
async def mercadopago_page(request: PageRequest) -> PageResult:
    """Two pages: the first recovers one payment, the second is the last."""
    first = request.offset == 0
    recovered = ["purchase:mercadopago:1001"] if first else []
    return PageResult(read=request.limit if first else 1, has_more=first, recovered=recovered)


@activity.defn(name=ASAAS_PAGE)
async def asaas_page(request: PageRequest) -> PageResult:
    """One page per sweep; the RECEIVED one recovers a charge."""
    recovered = ["asaas-payment:pay_1001"] if request.sweep == "RECEIVED" else []
    return PageResult(read=1, has_more=False, recovered=recovered)


@activity.defn(name=FIND_ORPHANS)
async def find_orphans(params: OrphansInput) -> OrphansResult:
    return OrphansResult(found=[OrphanFinding(kind="auth_user_without_profile", id="u-1")])


@activity.defn(name=PRUNE_SIGNATURES)
async def prune_signatures(params: PruneInput) -> int:
    return 3


SCENARIOS: dict[str, tuple[type, Callable[..., Any], Any]] = {
    "reconcile_mercadopago_two_pages": (
        ReconcileMercadoPagoWorkflow,
        ReconcileMercadoPagoWorkflow.run,
        ReconcileInput(page_size=2),
    ),
    "reconcile_asaas_both_sweeps": (
        ReconcileAsaasWorkflow,
        ReconcileAsaasWorkflow.run,
        ReconcileInput(),
    ),
    "reconcile_orphans_found": (
        ReconcileOrphansWorkflow,
        ReconcileOrphansWorkflow.run,
        OrphansInput(),
    ),
    "prune_webhook_signatures": (
        PruneWebhookSignaturesWorkflow,
        PruneWebhookSignaturesWorkflow.run,
        PruneInput(),
    ),
}


async def record(client: Client, name: str) -> None:
    target = HISTORIES / f"{name}.json"
    if target.exists():
        print(f"kept {name} (already recorded)")
        return
    workflow_type, run, arg = SCENARIOS[name]
    task_queue = f"record-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[workflow_type],
        activities=[mercadopago_page, asaas_page, find_orphans, prune_signatures],
    ):
        handle = await client.start_workflow(
            run, arg, id=f"{name}-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await handle.result()
        history = await handle.fetch_history()
    target.write_text(history.to_json())
    print(f"recorded {name}")


async def main() -> None:
    async with recording_env(pydantic_data_converter) as env:
        for name in SCENARIOS:
            await record(env.client, name)


if __name__ == "__main__":
    asyncio.run(main())
