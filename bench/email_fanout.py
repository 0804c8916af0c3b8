"""The workflow `bench.emails` runs: many orders' credentials e-mails scheduled at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.purchases import SEND_CREDENTIALS, OrderRef

FAN_OUT = 25  # e-mails per bench workflow: small, so no workflow task takes long


class FanOut(BaseModel):
    order_ids: list[str]
    email_task_queue: str


@workflow.defn(name="BenchSendCredentials")
class SendCredentialsFanOut:
    """Schedules `purchases.send_credentials` for each order at once, as many purchases reaching
    `sending_credentials` together would."""

    @workflow.run
    async def run(self, fan_out: FanOut) -> int:
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    SEND_CREDENTIALS,
                    OrderRef(order_id=order_id),
                    task_queue=fan_out.email_task_queue,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
                )
                for order_id in fan_out.order_ids
            )
        )
        return len(fan_out.order_ids)
