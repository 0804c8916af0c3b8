"""Record the Asaas payment workflow histories that `test_replay.py` replays.

Run after a deliberate change to the workflow's decisions (and say so in the commit). A history
already committed is never re-recorded (it is skipped): add a scenario under a new name instead.

    .venv/bin/python -m tests.sagas.record_histories

Each scenario runs on the time-skipping server with a fake `asaas.apply_payment`.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from contracts.asaas import SIGNAL, PaymentOutcome, PaymentRef
from tests.support import recording_env
from workflows.asaas_payment import AsaasPaymentWorkflow
from workflows.asaas_payment_client import hand_off_payment

HISTORIES = Path(__file__).parent.parent / "histories"


async def record(client: Client, name: str, *, event_during_apply: bool) -> None:
    target = HISTORIES / f"{name}.json"
    if target.exists():  # committed histories are what running workflows look like: keep them
        print(f"kept {name} (already recorded)")
        return
    applying = asyncio.Event()
    go_on = asyncio.Event()
    calls = 0

    @activity.defn(name="asaas.apply_payment")
    async def apply_payment(ref: PaymentRef) -> PaymentOutcome:
        nonlocal calls
        calls += 1
        if event_during_apply and calls == 1:
            applying.set()
            await go_on.wait()
        return PaymentOutcome(payment_id=ref.payment_id, outcome="applied", status="CONFIRMED")

    task_queue = f"record-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=task_queue, workflows=[AsaasPaymentWorkflow], activities=[apply_payment]
    ):
        handle = await hand_off_payment(
            client,
            payment_id=f"pay_{uuid.uuid4().hex[:12]}",
            event="PAYMENT_CONFIRMED",
            task_queue=task_queue,
        )
        if event_during_apply:
            await applying.wait()
            await handle.signal(SIGNAL, "PAYMENT_RECEIVED")
            go_on.set()
        await handle.result()
        history = await handle.fetch_history()
    target.write_text(history.to_json())
    print(f"recorded {name} ({calls} apply calls)")


async def main() -> None:
    async with recording_env(pydantic_data_converter) as env:
        await record(env.client, "asaas_payment_applied", event_during_apply=False)
        await record(env.client, "asaas_payment_event_during_apply", event_during_apply=True)


if __name__ == "__main__":
    asyncio.run(main())
