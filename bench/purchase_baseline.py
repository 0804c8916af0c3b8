"""The baseline of `bench.purchases` (c): a workflow shaped like a purchase, doing nothing.

A happy-path purchase (patch `purchases-lean-path`) runs six activities: three quick local ones
(fetch_payment; match_product, which also writes `queued`; and the `completed` stage write) and
three regular ones (create_user, which writes `creating_user` and `sending_credentials` itself;
send_credentials; and send_confirmation beside them), plus three search-attribute upserts. This
workflow does the same with no-ops, so the ratio measures what Entrega's own work (database,
providers, e-mails) costs on the same worker and server.

`classic=True` is the shape purchases had before that patch (nine activities: six local, with
four `set_stage`; four upserts), kept to show what the shape itself cost.
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
    async def run(self, classic: bool = False) -> str:
        await self._local("fetch_payment")
        await self._local("match_product")  # the catalogue check (lean: and `queued`)
        if classic:
            await self._stage("queued")
        beside = asyncio.create_task(
            workflow.execute_activity(noop, "send_confirmation", start_to_close_timeout=TIMEOUT)
        )
        if classic:
            await self._stage("creating_user")
        else:
            self._upsert("creating_user")
        await workflow.execute_activity(noop, "create_user", start_to_close_timeout=TIMEOUT)
        if classic:
            await self._stage("sending_credentials")
        else:
            self._upsert("sending_credentials")
        await workflow.execute_activity(noop, "send_credentials", start_to_close_timeout=TIMEOUT)
        await self._stage("completed")
        await beside
        return "completed"

    async def _stage(self, stage: str) -> None:
        self._upsert(stage)
        await self._local(stage)

    def _upsert(self, stage: str) -> None:
        workflow.upsert_search_attributes([search_attributes.STAGE.value_set(stage)])

    async def _local(self, step: str) -> None:
        await workflow.execute_local_activity(noop, step, start_to_close_timeout=TIMEOUT)
