"""The baseline of `bench.purchases` (c): a workflow shaped like a purchase, doing nothing.

A happy-path purchase runs nine activities: six quick local ones (fetch_payment, match_product
and four set_stage) and three regular ones (create_user, send_credentials, and send_confirmation
beside them), plus four search-attribute upserts. This workflow does the same with no-ops, so
the ratio measures what Entrega's own work (database, providers, e-mails) costs on the same
worker and server.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes

TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench.noop")
async def noop(step: str) -> str:
    return step


@workflow.defn(name="BenchNoopPurchase")
class NoopPurchaseWorkflow:
    @workflow.run
    async def run(self) -> str:
        await self._local("fetch_payment")
        await self._local("match_product")  # the catalogue check
        await self._stage("queued")
        beside = asyncio.create_task(
            workflow.execute_activity(noop, "send_confirmation", start_to_close_timeout=TIMEOUT)
        )
        await self._stage("creating_user")
        await workflow.execute_activity(noop, "create_user", start_to_close_timeout=TIMEOUT)
        await self._stage("sending_credentials")
        await workflow.execute_activity(noop, "send_credentials", start_to_close_timeout=TIMEOUT)
        await self._stage("completed")
        await beside
        return "completed"

    async def _stage(self, stage: str) -> None:
        workflow.upsert_search_attributes([search_attributes.STAGE.value_set(stage)])
        await self._local(stage)

    async def _local(self, step: str) -> None:
        await workflow.execute_local_activity(noop, step, start_to_close_timeout=TIMEOUT)
