"""Record the histories of the storm lane's patched paths (bounded local activities, the e-mail
queue, 429s waited out, the bounded saga journal), replayed by tests/purchases/test_replay.py and
tests/sagas/test_replay.py. Never re-records an existing file.

    .venv/bin/python -m tests.storm.record_histories
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.errors import ErrorCode
from contracts.purchases import FETCH_PAYMENT, SEND_CREDENTIALS, OrderRef, PaymentNotice
from tests.purchases.fakes import FakeWorld, approved
from tests.purchases.record_histories import CONFIG
from tests.storm.test_bounded_journal import Accounts, registration_running
from tests.storm.test_bounded_local_activities import _pending_failure
from tests.support import recording_env
from workflows.purchase import PurchaseWorkflow
from workflows.purchase_client import hand_off

HISTORIES = Path(__file__).parent.parent / "histories"


class RateLimitedWorld(FakeWorld):
    """Resend answers 429 to the first `limited` credentials attempts."""

    limited = 5

    @activity.defn(name=SEND_CREDENTIALS)
    async def send_credentials(self, ref: OrderRef) -> None:  # type: ignore[override]
        if self.limited > 0:
            self.limited -= 1
            raise ApplicationError(
                "resend limitou as chamadas", type=ErrorCode.PROVIDER_RATE_LIMITED
            )
        await FakeWorld.send_credentials(self, ref)


async def purchase(env: WorkflowEnvironment, name: str, world: FakeWorld) -> None:
    client = env.client
    task_queue = f"record-{uuid.uuid4()}"
    payment_id = f"{name}-{uuid.uuid4().hex[:6]}"
    world.payments[payment_id] = approved()
    config = CONFIG.model_copy(update={"email_task_queue": f"{task_queue}-email"})
    activities = world.activities()
    emails = [a for a in activities if getattr(a, "__name__", "").startswith("send_")]
    async with (
        Worker(client, task_queue=task_queue, workflows=[PurchaseWorkflow], activities=activities),
        Worker(client, task_queue=f"{task_queue}-email", activities=emails),
    ):
        handle = await hand_off(
            client,
            provider="mercadopago",
            provider_order_id=payment_id,
            notice=PaymentNotice(action="payment.created"),
            config=config,
            task_queue=task_queue,
        )
        if name == "purchase_storm_fetch_fell_back":
            await env.sleep(timedelta(seconds=30))
            assert await _pending_failure(handle, FETCH_PAYMENT)
            world.heal(FETCH_PAYMENT)
        await handle.result()
        history = await handle.fetch_history()
    _write(name, history.to_json())


async def registration(env: WorkflowEnvironment, name: str) -> None:
    accounts = Accounts()
    async with registration_running(env.client, f"record-{uuid.uuid4()}", accounts) as handle:
        await env.sleep(timedelta(seconds=30))
        assert await _pending_failure(handle, "journal.record")
        accounts.healthy = True
        await handle.result()
        history = await handle.fetch_history()
    _write(name, history.to_json())


def _write(name: str, text: str) -> None:
    path = HISTORIES / f"{name}.json"
    if path.exists():
        print(f"kept {name} (committed histories are never re-recorded)")
        return
    path.write_text(text)
    print(f"recorded {name}")


async def main() -> None:
    async with recording_env(pydantic_data_converter) as env:
        await purchase(env, "purchase_storm_completed", FakeWorld())
        fell_back = FakeWorld()
        fell_back.fail(FETCH_PAYMENT)
        await purchase(env, "purchase_storm_fetch_fell_back", fell_back)
        await purchase(env, "purchase_storm_rate_limited", RateLimitedWorld())
        await registration(env, "registration_storm_journal_fell_back")


if __name__ == "__main__":
    asyncio.run(main())
