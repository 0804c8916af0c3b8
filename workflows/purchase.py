"""One paid purchase, from the provider's notification to the customer's login, exactly once.

The workflow id is the order id (`purchase:<provider>:<id>`), so duplicate notifications all land
here. It decides; activities act: every effect is keyed by the workflow id and every stage change
is written to the orders table, the `EntregaStage` search attribute and the `status` query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.catalogue import CatalogueActivities
    from activities.failures import is_rate_limited, retry_after
    from activities.journal import JournalActivities
    from activities.purchases import PurchaseActivities
    from contracts import search_attributes
    from contracts.journal import LogEntry
    from contracts.purchases import (
        CancelRequest,
        CreateUser,
        FetchPayment,
        MatchProduct,
        OrderRef,
        OrderState,
        Payment,
        PaymentNotice,
        PurchaseInput,
        PurchaseResult,
        PurchaseStatus,
        Stage,
        StageChange,
        StageEntry,
    )

A = TypeVar("A")
T = TypeVar("T")
S = TypeVar("S")  # the activities class a method reference belongs to

REVOKED = ("refunded", "charged_back")
# Patch ids: each guards a change of decisions, so that older histories still replay.
REFUND_FINAL_PATCH = "purchases-refund-final"
# Approved payments are matched against the product catalogue before anything is provisioned.
CATALOGUE_PATCH = "catalogue-match-product"
FINISHED: tuple[Stage, ...] = ("completed", "revoked")

# Bookkeeping in our own database: keep trying, a stage change must never be lost.
_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
)
# Reading the payment: the order simply stays in awaiting_payment while the provider is down.
_FETCH_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=2))
# Local activities get a few seconds; then the same activity runs as a regular one with backoff,
# so an outage shows as a pending activity with its last failure instead of growing the history.
BOUNDED_LOCAL_PATCH = "storm-bounded-local-activities"
_LOCAL_BUDGET = timedelta(seconds=10)
_LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
)
# A provider's 429 waits its Retry-After and does not count against the retry schedule.
RATE_LIMIT_PATCH = "storm-rate-limit-free"
# The confirmation e-mail retries on its own for a day and never holds provisioning back.
_CONFIRMATION_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10))


class _Revoked(Exception):
    """A refund or chargeback arrived while the order was still being provisioned."""


class _Cancelled(Exception):
    """An operator's `cancel` reached an order waiting for payment, a retry or a person."""


# Patch ids (issue 14): EntregaStageSince set with every stage; the operator's `cancel`.
STAGE_SINCE_PATCH = "observe-stage-since"
CANCEL_PATCH = "observe-cancel"
# Issue 15: fewer round trips per order. The activity that does a step records its stage (the
# match writes `queued`; `create_user` writes `creating_user` and, with the user,
# `sending_credentials`), no search-attribute upsert repeats what the start already set
# (`EntregaOrderId`) or is replaced in the same workflow task (`queued`), and the run records
# one patch marker where it recorded up to six (each with its own search-attribute upsert).
LEAN_PATCH = "purchases-lean-path"


# A local activity's failure can arrive as the ApplicationError itself rather than wrapped.
_StepFailure = (ActivityError, ApplicationError)


def _is_permanent(err: ActivityError | ApplicationError) -> bool:
    cause = err.cause if isinstance(err, ActivityError) else err
    return isinstance(cause, ApplicationError) and cause.non_retryable


def _reason(err: ActivityError | ApplicationError) -> str:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}" if cause.type else cause.message
    return str(cause or err)


@workflow.defn(name="PurchaseWorkflow")
class PurchaseWorkflow:
    @workflow.init
    def __init__(self, purchase: PurchaseInput) -> None:
        self._input = purchase
        self._stage: Stage = "awaiting_payment"
        self._attempts = 0
        self._last_error: str | None = None
        self._next_retry_at: datetime | None = None
        self._history: list[StageEntry] = []
        self._notices: list[PaymentNotice] = []
        self._consumed = 0
        self._retry_requested = False
        self._payment: Payment | None = None
        self._user_id: str | None = None
        self._match_products = False
        self._cancel: CancelRequest | None = None
        self._stage_since = False
        self._cancellable = False
        self._bounded_local = False
        self._lean = False
        # The order as the match left it in `queued` (lean path), for `_run` to go on from.
        self._queued: OrderState | None = None

    # --- signals and query ------------------------------------------------------------------

    @workflow.signal(name="payment_updated")
    def payment_updated(self, notice: PaymentNotice) -> None:
        self._notices.append(notice)

    @workflow.signal(name="retry")
    def retry(self) -> None:
        self._retry_requested = True

    @workflow.signal(name="cancel")
    def cancel(self, request: CancelRequest) -> None:
        """End the order at its next wait (awaiting payment, parked, failed_permanent). A
        finished order (completed, revoked, cancelled) ignores it, and so does a run started
        before this signal existed (patch `observe-cancel`)."""
        if self._cancel is None:
            self._cancel = request

    @workflow.query(name="status")
    def status(self) -> PurchaseStatus:
        return PurchaseStatus(
            stage=self._stage,
            attempts=self._attempts,
            last_error=self._last_error,
            next_retry_at=self._next_retry_at,
            history=self._history,
        )

    # --- the flow -----------------------------------------------------------------------------

    @workflow.run
    async def run(self, purchase: PurchaseInput) -> PurchaseResult:
        try:
            return await self._run(purchase)
        except _Cancelled:
            assert self._cancel
            await self._enter(
                "cancelled", error=f"cancelado por {self._cancel.actor}: {self._cancel.reason}"
            )
            return self._result()

    async def _run(self, purchase: PurchaseInput) -> PurchaseResult:
        # Every patch is decided here, in the run's first activation: a first `patched` call
        # right after a local activity resolves can disagree between the original run and its
        # replay (the SDK learns of the marker one activation late), so none is made there.
        # Orders started before the catalogue existed are therefore never matched.
        # A run on the lean path has every earlier patch: asking for each again would only add
        # a marker and an upsert of `TemporalChangeVersion` per order. A run without it (no
        # marker in its history) asks for them as it always did.
        self._lean = workflow.patched(LEAN_PATCH)
        self._match_products = self._lean or workflow.patched(CATALOGUE_PATCH)
        self._stage_since = self._lean or workflow.patched(STAGE_SINCE_PATCH)
        self._cancellable = self._lean or workflow.patched(CANCEL_PATCH)
        # `hand_off` starts every order with its id set; a start without it still gets it.
        started_with = workflow.info().typed_search_attributes.get(search_attributes.ORDER_ID)
        if not self._lean or started_with is None:
            workflow.upsert_search_attributes(
                [search_attributes.ORDER_ID.value_set(workflow.info().workflow_id)]
            )
        # After the upsert, where its first local activity used to decide it, so the command
        # order of runs recorded then is unchanged.
        self._bounded_local = self._lean or workflow.patched(BOUNDED_LOCAL_PATCH)
        if purchase.provider == "appmax":
            # AppMax cannot be asked: the facts arrive with the signal that started us.
            await workflow.wait_condition(lambda: self._has_news)
        payment = await self._refresh()

        deadline = workflow.now() + purchase.config.payment_deadline
        while payment.state == "pending":
            await self._enter("awaiting_payment")
            remaining = deadline - workflow.now()
            woke = remaining > timedelta(0) and await self._wait(
                lambda: self._has_news or self._retry_requested or self._cancelling, remaining
            )
            self._raise_if_cancelled()
            if not woke:
                await self._enter("cancelled", error="prazo de pagamento expirado")
                return self._result()
            self._retry_requested = False
            payment = await self._refresh()

        if payment.state == "approved" and self._match_products:
            payment = await self._until_matched(payment)
        if payment.state == "rejected":
            await self._enter("cancelled", error=f"pagamento {payment.provider_status}")
            return self._result()
        if payment.state in REVOKED:
            await self._revoke()
            return self._result()

        if self._queued is not None:
            # The match wrote `queued`; every branch below sets the search attribute before
            # the run next waits, so `queued` (which lasts no time) is not upserted.
            self._begin("queued", upsert=False)
            order = self._queued
        else:
            order = await self._enter("queued")
        self._user_id = order.lovable_user_id
        if order.refunded and (self._lean or workflow.patched(REFUND_FINAL_PATCH)):
            # Refunded before, maybe in an earlier run: a late or re-sent "paid" never grants
            # access. The orders table refused `queued` and keeps its stage; so does the order.
            self._stage = order.stage
            self._history.append(
                StageEntry(stage=order.stage, at=workflow.now(), error="pedido já estornado")
            )
            workflow.upsert_search_attributes([search_attributes.STAGE.value_set(order.stage)])
            return self._result()
        if order.stage in FINISHED:
            # A finished order is never reopened by a late duplicate of its notification.
            self._stage = order.stage
            workflow.upsert_search_attributes([search_attributes.STAGE.value_set(order.stage)])
        else:
            confirmation = asyncio.create_task(self._send_confirmation())
            try:
                await self._provision(order)
            except _Revoked:
                await self._revoke()
                await confirmation
                return self._result()
            await confirmation

        if self._stage == "completed":
            await self._listen_for_revocation()
        return self._result()

    async def _provision(self, order: OrderState) -> None:
        """Create the user, then send the credentials; park on the retry schedule on failure."""
        schedule = self._input.config.retry_schedule
        round_ = 0
        credentials_sent = order.credentials_sent
        while True:
            self._attempts += 1
            try:
                wrote_next = False
                if self._user_id is None:
                    request: OrderRef = self._ref()
                    if self._lean:
                        # The activity writes both stages; the next one is built now, as it
                        # will be (nothing it carries changes meanwhile).
                        then = None if credentials_sent else self._change("sending_credentials")
                        request = CreateUser(
                            order_id=workflow.info().workflow_id,
                            stage=self._begin("creating_user"),
                            then=then,
                        )
                        wrote_next = then is not None
                    else:
                        await self._enter("creating_user")
                    self._user_id = await workflow.execute_activity_method(
                        PurchaseActivities.create_user,
                        # Before the lean patch a bare OrderRef, which the activity reads as a
                        # CreateUser with no stage to write (the very bytes those runs sent).
                        cast(CreateUser, request),
                        start_to_close_timeout=self._step_timeout,
                        retry_policy=self._step_retry(),
                    )
                if not credentials_sent:
                    if wrote_next:
                        self._begin("sending_credentials")
                    else:
                        await self._enter("sending_credentials")
                    await workflow.execute_activity_method(
                        PurchaseActivities.send_credentials,
                        self._ref(),
                        task_queue=self._input.config.email_task_queue,
                        start_to_close_timeout=self._step_timeout,
                        retry_policy=self._step_retry(),
                    )
                    credentials_sent = True
                await self._enter("completed")
                return
            except ActivityError as err:
                if is_rate_limited(err) and (self._lean or workflow.patched(RATE_LIMIT_PATCH)):
                    # Asked to slow down, not refused: wait as told, keep the whole schedule.
                    self._last_error = _reason(err)
                    await self._park(retry_after(err) or self._input.config.step_initial_interval)
                    continue
                failed_stage: Stage = "failed_at_email" if self._user_id else "failed_at_user"
                if _is_permanent(err) or round_ >= len(schedule):
                    await self._enter("failed_permanent", error=_reason(err))
                    await self._park(None)
                    round_ = 0  # an operator's retry gets the whole schedule again
                else:
                    delay = schedule[round_]
                    round_ += 1
                    self._next_retry_at = workflow.now() + delay
                    await self._enter(failed_stage, error=_reason(err))
                    await self._park(delay)

    async def _until_matched(self, payment: Payment) -> Payment:
        """An approved payment that matches no product Entrega sells is parked in
        `failed_permanent` with the reason: no user, no e-mail. A `retry` (after a person fixed
        the catalogue) matches it again; a refund or cancellation ends it. Answers the payment
        as it stands once it matches or is no longer approved."""
        while payment.state in ("approved", "pending"):
            if payment.state == "approved":
                request = MatchProduct(
                    order_id=workflow.info().workflow_id,
                    payment=payment,
                    then=self._change("queued") if self._lean else None,
                )
                if self._lean:
                    # It writes a stage: bounded like the stage writes, so a database outage
                    # shows as a pending activity instead of growing the history.
                    match = await self._local(CatalogueActivities.match_product, request, _DB_RETRY)
                else:
                    match = await workflow.execute_local_activity_method(
                        CatalogueActivities.match_product,
                        request,
                        start_to_close_timeout=self._step_timeout,
                        retry_policy=_DB_RETRY,
                    )
                if match.mismatch is None:
                    self._queued = match.order
                    return payment
                if (self._stage, self._last_error) != ("failed_permanent", match.mismatch):
                    await self._enter("failed_permanent", error=match.mismatch)
            await workflow.wait_condition(lambda: self._retry_requested or self._has_news)
            self._retry_requested = False
            payment = await self._refresh()
        return payment

    async def _park(self, delay: timedelta | None) -> None:
        """Wait for the durable timer (None: forever) or a `retry` signal, whichever comes first.

        Notifications arriving meanwhile are read: a refund ends provisioning; anything else
        leaves the order parked.
        """
        until = None if delay is None else workflow.now() + delay
        while True:
            remaining = None if until is None else until - workflow.now()
            if remaining is not None and remaining <= timedelta(0):
                break
            woke = await self._wait(
                lambda: self._retry_requested or self._has_news or self._cancelling, remaining
            )
            self._raise_if_cancelled()
            if self._has_news and (await self._refresh()).state in REVOKED:
                raise _Revoked
            if self._retry_requested or not woke:
                break
        self._retry_requested = False
        self._next_retry_at = None

    async def _listen_for_revocation(self) -> None:
        """A completed order keeps listening for a refund or chargeback for a while."""
        until = workflow.now() + self._input.config.revocation_window
        while (remaining := until - workflow.now()) > timedelta(0):
            if not await self._wait(lambda: self._has_news, remaining):
                return
            if (await self._refresh()).state in REVOKED:
                await self._revoke()
                return

    async def _revoke(self) -> None:
        while True:
            try:
                deactivated = await workflow.execute_activity_method(
                    PurchaseActivities.deactivate_user,
                    self._ref(),
                    start_to_close_timeout=self._step_timeout,
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
                )
                break
            except ActivityError as err:
                if not _is_permanent(err):
                    raise
                # Lovable refuses (e.g. a revoked service key): a person fixes it, then retries.
                await self._enter("failed_permanent", error=_reason(err))
                await workflow.wait_condition(lambda: self._retry_requested)
                self._retry_requested = False
        if deactivated:
            await self._enter("revoked")
        else:
            await self._enter("cancelled", error="pagamento estornado antes do acesso")

    async def _send_confirmation(self) -> None:
        try:
            await workflow.execute_activity_method(
                PurchaseActivities.send_confirmation,
                self._ref(),
                task_queue=self._input.config.email_task_queue,
                start_to_close_timeout=self._step_timeout,
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=RetryPolicy(
                    initial_interval=self._input.config.step_initial_interval,
                    maximum_interval=_CONFIRMATION_RETRY.maximum_interval,
                ),
            )
        except ActivityError as err:
            await workflow.execute_activity_method(
                JournalActivities.record,
                LogEntry(
                    workflow_id=workflow.info().workflow_id,
                    event="confirmation_abandoned",
                    stage=self._stage,
                    error=_reason(err),
                ),
                start_to_close_timeout=self._step_timeout,
                retry_policy=_DB_RETRY,
            )

    # --- helpers ------------------------------------------------------------------------------

    @property
    def _cancelling(self) -> bool:
        return self._cancel is not None and self._cancellable

    def _raise_if_cancelled(self) -> None:
        if self._cancel is not None and self._cancellable:
            raise _Cancelled

    @property
    def _has_news(self) -> bool:
        return len(self._notices) > self._consumed

    async def _refresh(self) -> Payment:
        """The payment's facts: fetched from Mercado Pago, or taken from AppMax's notices."""
        notices = self._notices[self._consumed :]
        self._consumed = len(self._notices)
        if self._input.provider == "mercadopago":
            while True:
                try:
                    # Local: a quick read whose only effect is its answer; no server round trips.
                    self._payment = await self._local(
                        PurchaseActivities.fetch_payment,
                        FetchPayment(provider_order_id=self._input.provider_order_id),
                        _FETCH_RETRY,
                    )
                    return self._payment
                except _StepFailure as err:
                    if not _is_permanent(err):
                        raise
                    # Bad credentials or an unknown payment: a person must look.
                    await self._enter("failed_permanent", error=_reason(err))
                    await workflow.wait_condition(
                        lambda: self._retry_requested or self._has_news or self._cancelling
                    )
                    self._raise_if_cancelled()
                    self._retry_requested = False
                    self._consumed = len(self._notices)
        for notice in notices:
            if notice.payment is None:
                continue
            if self._payment and self._payment.state in REVOKED:
                continue  # once refunded, a late "paid" never grants access again
            self._payment = notice.payment
        assert self._payment, "AppMax purchases start with the Apphook's facts"
        return self._payment

    async def _enter(self, stage: Stage, *, error: str | None = None) -> OrderState:
        # Local: our own idempotent bookkeeping, run in this worker beside the workflow task, so
        # the table follows the search attribute within milliseconds at no server cost.
        return await self._local(
            PurchaseActivities.set_stage, self._begin(stage, error=error), _DB_RETRY
        )

    def _begin(self, stage: Stage, *, error: str | None = None, upsert: bool = True) -> StageChange:
        """Enter `stage` in the workflow (status query, search attribute, Web UI details);
        answers the change to write to the orders table."""
        change = self._change(stage, error=error)
        self._stage = stage
        self._last_error = change.last_error
        self._history.append(StageEntry(stage=stage, at=workflow.now(), error=error))
        if upsert:
            updates: list[SearchAttributeUpdate[Any]] = [search_attributes.STAGE.value_set(stage)]
            if self._stage_since:
                updates.append(search_attributes.STAGE_SINCE.value_set(workflow.now()))
            workflow.upsert_search_attributes(updates)
        self._show_details()
        return change

    def _change(self, stage: Stage, *, error: str | None = None) -> StageChange:
        """The row `stage` writes, were it entered now (nothing in the workflow changes)."""
        keeps_error = error is None and stage not in ("queued", "completed")
        return StageChange(
            order_id=workflow.info().workflow_id,
            provider=self._input.provider,
            provider_order_id=self._input.provider_order_id,
            stage=stage,
            attempts=self._attempts,
            last_error=self._last_error if keeps_error else error,
            next_retry_at=self._next_retry_at,
            payment=self._payment,
        )

    async def _local(
        self,
        activity: Callable[[S, A], Awaitable[T]],
        arg: A,
        retry: RetryPolicy,
    ) -> T:
        """A local activity bounded to seconds, then the same activity as a regular one with
        `retry`'s backoff (runs from before the patch: local, retried as `retry` says)."""
        if not self._bounded_local:
            return await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=self._step_timeout, retry_policy=retry
            )
        try:
            return await workflow.execute_local_activity_method(
                activity,
                arg,
                start_to_close_timeout=min(self._step_timeout, _LOCAL_BUDGET),
                schedule_to_close_timeout=_LOCAL_BUDGET,
                retry_policy=_LOCAL_RETRY,
            )
        except _StepFailure as err:
            if _is_permanent(err):
                raise
        return await workflow.execute_activity_method(
            activity, arg, start_to_close_timeout=self._step_timeout, retry_policy=retry
        )

    def _show_details(self) -> None:
        """What the Web UI shows of this run: its stage and, once something failed, why.

        Not part of history (no command), so it needs no patch; a replay sets it again."""
        error = f" — último erro: {self._last_error}" if self._last_error else ""
        workflow.set_current_details(f"**{self._stage}**{error}")

    async def _wait(self, condition: Callable[[], bool], limit: timedelta | None) -> bool:
        """True when `condition` came true, False when the durable timer ran out first."""
        try:
            await workflow.wait_condition(condition, timeout=limit)
        except TimeoutError:
            return False
        return True

    @property
    def _step_timeout(self) -> timedelta:
        return self._input.config.step_timeout

    def _step_retry(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=self._input.config.step_initial_interval,
            maximum_attempts=self._input.config.step_attempts,
        )

    def _ref(self) -> OrderRef:
        return OrderRef(order_id=workflow.info().workflow_id)

    def _result(self) -> PurchaseResult:
        return PurchaseResult(
            order_id=workflow.info().workflow_id, stage=self._stage, lovable_user_id=self._user_id
        )
