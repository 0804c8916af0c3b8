"""Record the purchase workflow histories that `test_replay.py` replays.

Committed histories are never re-recorded: running workflows made those decisions. After a
change to the workflow (behind `workflow.patched`), add a scenario for the new path and record
just the missing files (or the scenarios named):
    .venv/bin/python -m tests.purchases.record_histories [NAME ...]
Each scenario runs on the time-skipping server with the fake activities of `fakes.py`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.purchases import (
    CREATE_USER,
    CancelRequest,
    Payment,
    PaymentNotice,
    PurchaseConfig,
)
from tests.conftest import converter_for_tests
from tests.purchases.fakes import FAST, FakeWorld, approved, wait_for_stage
from tests.support import recording_env
from workflows.purchase import PurchaseWorkflow
from workflows.purchase_client import hand_off

HISTORIES = Path(__file__).parent.parent / "histories"
CONFIG = PurchaseConfig(
    retry_schedule=[timedelta(minutes=5), timedelta(minutes=10)],
    payment_deadline=timedelta(days=3),
    revocation_window=timedelta(days=30),
    step_attempts=2,
    step_initial_interval=FAST,
)

# A scenario drives the workflow; it may answer the handle of a later run to record instead.
Scenario = Callable[
    [WorkflowEnvironment, WorkflowHandle[Any, Any], FakeWorld],
    Awaitable[WorkflowHandle[Any, Any] | None],
]


async def completed(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], world: FakeWorld
) -> None:
    await handle.result()


async def retried_after_failures(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "failed_at_user")
    await env.sleep(timedelta(minutes=5))
    await wait_for_stage(handle, "failed_at_user")
    await env.sleep(timedelta(minutes=10))
    await wait_for_stage(handle, "failed_permanent")
    world.heal(CREATE_USER)
    await handle.signal("retry")
    await handle.result()


async def pending_then_refunded(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "awaiting_payment")
    while "awaiting_payment" not in world.stages:
        await asyncio.sleep(0.05)
    payment_id = handle.id.rsplit(":", 1)[1]
    world.payments[payment_id] = approved()
    await handle.signal("payment_updated", PaymentNotice(action="payment.updated"))
    await wait_for_stage(handle, "completed")
    world.payments[payment_id] = Payment(state="refunded", provider_status="refunded")
    await handle.signal("payment_updated", PaymentNotice(action="payment.updated"))
    await handle.result()


async def appmax_paid_then_refunded(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "completed")
    refund = Payment(state="refunded", provider_status="estornado")
    await handle.signal("payment_updated", PaymentNotice(action="OrderRefund", payment=refund))
    await handle.result()


async def appmax_paid_after_refund(env, handle, world):  # type: ignore[no-untyped-def]
    """OrderRefund first (the run closes cancelled), then OrderPaid: the new run finds the order
    refunded and ends (patch purchases-refund-final). The new run is recorded."""
    await handle.result()
    provider_order_id = handle.id.rsplit(":", 1)[1]
    return await hand_off(
        env.client,
        provider="appmax",
        provider_order_id=provider_order_id,
        notice=PaymentNotice(action="OrderPaid", payment=approved()),
        config=CONFIG,
        task_queue=(await handle.describe()).task_queue,
    )


MISMATCH = "pagamento não confere com o catálogo: valor pago R$ 9,90 diferente do preço válido"


async def catalogue_mismatch_then_retried(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "failed_permanent")
    world.mismatch = None  # a person fixed the catalogue
    await handle.signal("retry")
    await handle.result()


async def appmax_catalogue_mismatch_refunded(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "failed_permanent")
    refund = Payment(state="refunded", provider_status="estornado")
    await handle.signal("payment_updated", PaymentNotice(action="OrderRefund", payment=refund))
    await handle.result()


def _mismatched(world: FakeWorld) -> None:
    world.mismatch = MISMATCH


async def cancelled_by_operator(env, handle, world) -> None:  # type: ignore[no-untyped-def]
    await wait_for_stage(handle, "failed_at_user")
    await handle.signal("cancel", CancelRequest(reason="cliente desistiu", actor="ana"))
    await handle.result()


def _slow_queued(world: FakeWorld) -> None:
    # Longer than the workflow task's heartbeat (80% of its 10 s timeout): the `queued` write's
    # marker and the purchases-refund-final patch land in a later workflow task than the first.
    world.slow_stages["queued"] = 9


SCENARIOS: dict[str, tuple[Payment, Callable[[FakeWorld], None], Scenario]] = {
    "purchase_completed": (approved(), lambda w: None, completed),
    "purchase_retried_after_failures": (
        approved(),
        lambda w: w.fail(CREATE_USER),
        retried_after_failures,
    ),
    "purchase_pending_then_refunded": (
        Payment(state="pending", provider_status="pending"),
        lambda w: None,
        pending_then_refunded,
    ),
    # AppMax: no fetch, the facts come with the signals.
    "purchase_appmax_paid_then_refunded": (approved(), lambda w: None, appmax_paid_then_refunded),
    "purchase_appmax_paid_after_refund": (
        Payment(state="refunded", provider_status="estornado"),
        lambda w: None,
        appmax_paid_after_refund,
    ),
    # Patch catalogue-match-product: the payment is matched against the catalogue first.
    "purchase_catalogue_matched": (approved(), lambda w: None, completed),
    "purchase_catalogue_mismatch_then_retried": (
        approved(),
        _mismatched,
        catalogue_mismatch_then_retried,
    ),
    "purchase_appmax_catalogue_mismatch_refunded": (
        approved(),
        _mismatched,
        appmax_catalogue_mismatch_refunded,
    ),
    # Issue 14: EntregaStageSince with every stage (patch observe-stage-since) ...
    "purchase_completed_with_stage_since": (approved(), lambda w: None, completed),
    # ... and an operator's cancel of a parked order (patch observe-cancel).
    "purchase_cancelled_by_operator": (
        approved(),
        lambda w: w.fail(CREATE_USER),
        cancelled_by_operator,
    ),
    # Both patches: the re-sent OrderPaid of a refunded order (a price the catalogue refuses)
    # is not judged, and the run ends with the order still cancelled.
    "purchase_appmax_paid_after_refund_mismatched": (
        Payment(state="refunded", provider_status="estornado"),
        _mismatched,
        appmax_paid_after_refund,
    ),
    # The same with a slow `queued` write: the patch is decided in a later workflow task.
    "purchase_appmax_paid_after_refund_slow_write": (
        Payment(state="refunded", provider_status="estornado"),
        _slow_queued,
        appmax_paid_after_refund,
    ),
    # Issue 15 (patch purchases-lean-path): the match writes `queued`, create_user writes
    # `creating_user` and `sending_credentials`; no upsert of the order id or of `queued`.
    "purchase_lean_completed": (approved(), lambda w: None, completed),
    "purchase_lean_retried_after_failures": (
        approved(),
        lambda w: w.fail(CREATE_USER),
        retried_after_failures,
    ),
    "purchase_lean_catalogue_mismatch_then_retried": (
        approved(),
        _mismatched,
        catalogue_mismatch_then_retried,
    ),
    "purchase_lean_pending_then_refunded": (
        Payment(state="pending", provider_status="pending"),
        lambda w: None,
        pending_then_refunded,
    ),
    "purchase_lean_appmax_paid_after_refund": (
        Payment(state="refunded", provider_status="estornado"),
        lambda w: None,
        appmax_paid_after_refund,
    ),
}


async def record(client: Client, env: WorkflowEnvironment, name: str) -> None:
    payment, prepare, scenario = SCENARIOS[name]
    world = FakeWorld()
    prepare(world)
    task_queue = f"record-{uuid.uuid4()}"
    payment_id = f"{name}-{uuid.uuid4().hex[:6]}"
    world.payments[payment_id] = payment
    async with Worker(
        client, task_queue=task_queue, workflows=[PurchaseWorkflow], activities=world.activities()
    ):
        appmax = "appmax" in name
        handle = await hand_off(
            client,
            provider="appmax" if appmax else "mercadopago",
            provider_order_id=payment_id,
            notice=PaymentNotice(
                action="OrderPaid" if appmax else "payment.created",
                payment=payment if appmax else None,
            ),
            config=CONFIG,
            task_queue=task_queue,
        )
        recorded = await scenario(env, handle, world) or handle
        await recorded.result()
        history = await recorded.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}")


async def main(names: list[str]) -> None:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    async with recording_env(converter_for_tests()) as env:
        missing = [n for n in SCENARIOS if not (HISTORIES / f"{n}.json").exists()]
        for name in names or missing:
            await record(env.client, env, name)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
