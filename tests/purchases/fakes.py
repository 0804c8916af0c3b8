"""In-memory replacements for the purchase activities, registered under the real names.

They let the workflow's decisions (stages, schedule, signals) be tested on the time-skipping
server in seconds; the real activities are proved against the sandbox in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from contracts.journal import LogEntry
from contracts.purchases import (
    CREATE_USER,
    DEACTIVATE_USER,
    FETCH_PAYMENT,
    MATCH_PRODUCT,
    SEND_CONFIRMATION,
    SEND_CREDENTIALS,
    SET_STAGE,
    CreateUser,
    FetchPayment,
    MatchProduct,
    OrderRef,
    OrderState,
    Payment,
    ProductMatch,
    PurchaseStatus,
    StageChange,
)

FAST = timedelta(milliseconds=50)


def approved(email: str = "ana@example.com") -> Payment:
    return Payment(state="approved", provider_status="approved", email=email, name="Ana Souza")


@dataclass
class FakeWorld:
    """What the fake activities did, and the failures they are told to produce."""

    payments: dict[str, Payment] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    deactivated: list[str] = field(default_factory=list)
    emails: list[tuple[str, str]] = field(default_factory=list)
    journal: list[LogEntry] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    # As the orders table: each order's stage, and the orders a refund made final.
    order_stages: dict[str, str] = field(default_factory=dict)
    refunded: set[str] = field(default_factory=set)
    # why every payment matches no product in the catalogue (None: they all match)
    mismatch: str | None = None
    # stage -> seconds its write takes (a slow database), in real time
    slow_stages: dict[str, float] = field(default_factory=dict)
    # activity name -> how many more calls fail, and whether as a permanent error
    failures: dict[str, tuple[int, bool]] = field(default_factory=dict)

    def fail(self, name: str, times: int = 10**6, *, permanent: bool = False) -> None:
        self.failures[name] = (times, permanent)

    def heal(self, name: str) -> None:
        self.failures.pop(name, None)

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] += 1
        times, permanent = self.failures.get(name, (0, False))
        if times > 0:
            self.failures[name] = (times - 1, permanent)
            raise ApplicationError(
                f"{name} failed on purpose",
                type="PermanentError" if permanent else "TransientError",
                non_retryable=permanent,
            )

    @activity.defn(name=FETCH_PAYMENT)
    async def fetch_payment(self, request: FetchPayment) -> Payment:
        self._maybe_fail(FETCH_PAYMENT)
        return self.payments[request.provider_order_id]

    @activity.defn(name=MATCH_PRODUCT)
    async def match_product(self, request: MatchProduct) -> ProductMatch:
        self.calls[MATCH_PRODUCT] += 1
        if request.order_id in self.refunded:
            # as activities/catalogue.py: the run's refund check ends it
            return ProductMatch(order=await self._then(request.then))
        if self.mismatch:
            return ProductMatch(mismatch=self.mismatch)
        return ProductMatch(product_id="entrega-acesso", order=await self._then(request.then))

    async def _then(self, change: StageChange | None) -> OrderState | None:
        """A stage the activity writes itself (patch purchases-lean-path)."""
        return None if change is None else await self.set_stage(change)

    @activity.defn(name=SET_STAGE)
    async def set_stage(self, change: StageChange) -> OrderState:
        self.stages.append(change.stage)
        if change.stage in self.slow_stages:
            await asyncio.sleep(self.slow_stages[change.stage])
        carries_refund = change.payment is not None and change.payment.state in (
            "refunded",
            "charged_back",
        )
        if carries_refund:
            self.refunded.add(change.order_id)
        refunded = change.order_id in self.refunded
        if (
            not refunded
            or change.stage in ("cancelled", "revoked")
            or (change.stage == "failed_permanent" and carries_refund)
        ):
            self.order_stages[change.order_id] = change.stage
        return OrderState(
            stage=self.order_stages.get(change.order_id, change.stage),
            lovable_user_id=self.users.get(change.order_id),
            refunded=refunded,
        )

    @activity.defn(name=CREATE_USER)
    async def create_user(self, ref: CreateUser) -> str:
        if ref.stage is not None and self.order_stages.get(ref.order_id) != ref.stage.stage:
            await self.set_stage(ref.stage)
        self._maybe_fail(CREATE_USER)
        user = self.users.setdefault(ref.order_id, f"user-{len(self.users) + 1}")
        await self._then(ref.then)
        return user

    @activity.defn(name=SEND_CREDENTIALS)
    async def send_credentials(self, ref: OrderRef) -> None:
        self._maybe_fail(SEND_CREDENTIALS)
        self.emails.append(("credentials", ref.order_id))

    @activity.defn(name=SEND_CONFIRMATION)
    async def send_confirmation(self, ref: OrderRef) -> None:
        self._maybe_fail(SEND_CONFIRMATION)
        self.emails.append(("purchase_confirmation", ref.order_id))

    @activity.defn(name=DEACTIVATE_USER)
    async def deactivate_user(self, ref: OrderRef) -> bool:
        self._maybe_fail(DEACTIVATE_USER)
        if ref.order_id not in self.users:
            return False
        self.deactivated.append(self.users[ref.order_id])
        return True

    @activity.defn(name="journal.record")
    async def record(self, entry: LogEntry) -> None:
        self.journal.append(entry)

    def activities(self) -> list[Any]:
        return [
            self.fetch_payment,
            self.match_product,
            self.set_stage,
            self.create_user,
            self.send_credentials,
            self.send_confirmation,
            self.deactivate_user,
            self.record,
        ]


async def status(handle: WorkflowHandle[Any, Any]) -> PurchaseStatus:
    result: PurchaseStatus = await handle.query("status", result_type=PurchaseStatus)
    return result


async def wait_for_stage(
    handle: WorkflowHandle[Any, Any], stage: str, *, seconds: float = 15
) -> PurchaseStatus:
    """Poll the `status` query until the order is in `stage` (time does not skip meanwhile)."""
    deadline = asyncio.get_running_loop().time() + seconds
    current = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            current = await status(handle)
            if current.stage == stage:
                return current
        except Exception:  # the first workflow task may not have run yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"stage never became {stage}; last status: {current}")


async def search_stage(client: Client, workflow_id: str) -> str | None:
    """The EntregaStage search attribute as Temporal's visibility store has it."""
    from contracts import search_attributes

    description = await client.get_workflow_handle(workflow_id).describe()
    return description.typed_search_attributes.get(search_attributes.STAGE)
