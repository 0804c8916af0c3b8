"""Record the histories of the signup sagas answered by their `outcome` update (update-with-start,
patch signups-answer-early), replayed by `test_replay.py`. Never re-records an existing file.

    .venv/bin/python -m tests.sagas.record_answer_histories

Runs on the Temporal dev server (update-with-start needs it) with fake account activities: a
success of each saga, and a failure of each whose compensation fails its first attempt (answered
rollback_pending, also to a second request) and then succeeds.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import search_attributes
from contracts.journal import LogEntry
from contracts.signups import (
    AttemptOutcome,
    AuthUserCleanup,
    AuthUserRef,
    CheckoutInput,
    CustomerCleanup,
    CustomerRef,
    CustomerSpec,
    NewAuthUser,
    NewProfile,
    ProfileRef,
    RegistrationInput,
    SavedCustomer,
    SavedSubscription,
    SubscriptionCleanup,
    SubscriptionRef,
    SubscriptionSpec,
)
from workflows.checkout import CheckoutWorkflow
from workflows.registration import RegistrationWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
PROFILE = uuid.UUID("00000000-0000-4000-8000-000000000002")


class Accounts:
    """Fake account activities: `failing` names the step that fails for good and the
    compensation whose first attempt fails."""

    def __init__(self, failing: tuple[str, str] | None = None) -> None:
        self.failing_step, self.failing_undo = failing or ("", "")
        self.undo_attempts = 0

    def _step(self, name: str) -> None:
        if name == self.failing_step:
            raise ApplicationError(f"{name} refused", type="provider_rejected", non_retryable=True)

    def _undo(self, name: str) -> None:
        if name == self.failing_undo:
            self.undo_attempts += 1
            if self.undo_attempts == 1:
                raise ApplicationError(f"{name} unavailable", type="provider_unavailable")

    @activity.defn(name="accounts.create_auth_user")
    async def create_auth_user(self, new: NewAuthUser) -> AuthUserRef:
        self._step("create_auth_user")
        return AuthUserRef(auth_user_id=USER)

    @activity.defn(name="accounts.delete_auth_user")
    async def delete_auth_user(self, target: AuthUserCleanup) -> None:
        self._undo("delete_auth_user")

    @activity.defn(name="accounts.create_profile")
    async def create_profile(self, new: NewProfile) -> ProfileRef:
        self._step("create_profile")
        return ProfileRef(profile_id=PROFILE, auth_user_id=USER)

    @activity.defn(name="accounts.delete_profile")
    async def delete_profile(self, target: AuthUserRef) -> None:
        self._undo("delete_profile")

    @activity.defn(name="accounts.ensure_asaas_customer")
    async def ensure_asaas_customer(self, spec: CustomerSpec) -> CustomerRef:
        return CustomerRef(customer_id="cus_1", created=True)

    @activity.defn(name="accounts.delete_asaas_customer")
    async def delete_asaas_customer(self, target: CustomerCleanup) -> None:
        self._undo("delete_asaas_customer")

    @activity.defn(name="accounts.save_asaas_customer")
    async def save_asaas_customer(self, saved: SavedCustomer) -> None:
        return None

    @activity.defn(name="accounts.clear_asaas_customer")
    async def clear_asaas_customer(self, saved: SavedCustomer) -> None:
        return None

    @activity.defn(name="accounts.create_subscription")
    async def create_subscription(self, spec: SubscriptionSpec) -> SubscriptionRef:
        self._step("create_subscription")
        return SubscriptionRef(subscription_id="sub_1")

    @activity.defn(name="accounts.delete_subscription")
    async def delete_subscription(self, target: SubscriptionCleanup) -> None:
        return None

    @activity.defn(name="accounts.save_subscription")
    async def save_subscription(self, saved: SavedSubscription) -> None:
        return None

    @activity.defn(name="accounts.clear_subscription")
    async def clear_subscription(self, saved: SavedSubscription) -> None:
        return None

    @activity.defn(name="accounts.finish_checkout")
    async def finish_checkout(self, outcome: AttemptOutcome) -> None:
        return None

    @activity.defn(name="journal.record")
    async def record(self, entry: LogEntry) -> None:
        return None

    def all(self) -> list[Any]:
        return [
            getattr(self, name)
            for name in dir(self)
            if hasattr(getattr(self, name), "__temporal_activity_definition")
        ]


async def record(
    client: Client, name: str, accounts: Accounts, start: Any, update: Any, *args: Any
) -> None:
    target = HISTORIES / f"{name}.json"
    if target.exists():  # committed histories are what running workflows look like: keep them
        print(f"kept {name} (already recorded)")
        return
    task_queue = f"record-{uuid.uuid4()}"
    workflow, arg = start
    operation = WithStartWorkflowOperation(
        workflow,
        arg,
        id=f"{name}-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RegistrationWorkflow, CheckoutWorkflow],
        activities=accounts.all(),
    ):
        try:
            answer = await client.execute_update_with_start_workflow(
                update, *args, start_workflow_operation=operation
            )
        except WorkflowUpdateFailedError as failed:
            answer = failed.cause
            # A second request meanwhile gets the same answer.
            handle = await operation.workflow_handle()
            try:
                await handle.execute_update(update, *[f"other-{a}" for a in args])
            except WorkflowUpdateFailedError as again:
                print(f"  second request: {again.cause}")
        handle = await operation.workflow_handle()
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
        history = await handle.fetch_history()
    target.write_text(history.to_json())
    print(f"recorded {name}: {answer}")


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=list(search_attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    person = RegistrationInput(
        name="Ana",
        email="ana@example.com",
        phone="+5511987654321",
        cpf_cnpj="52998224725",
        sealed_password="sealed",
        request_id="request-1",
    )
    checkout = CheckoutInput(
        profile_id=PROFILE,
        auth_user_id=USER,
        name="Ana",
        email="ana@example.com",
        phone="+5511987654321",
        cpf_cnpj="52998224725",
        asaas_customer_id=None,
        subscription_id=None,
        plan_id="basic",
        plan_name="Basic",
        price_cents=4990,
        cycle="MONTHLY",
        billing_type="PIX",
    )
    registration = (RegistrationWorkflow.run, person)
    first_checkout = (CheckoutWorkflow.run, checkout)
    try:
        client = env.client
        await record(
            client,
            "registration_answered_completed",
            Accounts(),
            registration,
            RegistrationWorkflow.outcome,
            "request-1",
        )
        await record(
            client,
            "registration_answered_rollback_pending",
            Accounts(("create_profile", "delete_auth_user")),
            registration,
            RegistrationWorkflow.outcome,
            "request-1",
        )
        await record(
            client,
            "checkout_first_answered_completed",
            Accounts(),
            first_checkout,
            CheckoutWorkflow.outcome,
        )
        await record(
            client,
            "checkout_first_answered_rollback_pending",
            Accounts(("create_subscription", "delete_asaas_customer")),
            first_checkout,
            CheckoutWorkflow.outcome,
        )
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
