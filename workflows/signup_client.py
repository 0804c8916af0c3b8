"""Starting the signup sagas from outside and waiting for their outcome (the API's side).

The HTTP answers are the route's: this module speaks in saga outcomes and a few exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.signups import (
    CheckoutInput,
    CheckoutResult,
    RegistrationInput,
    RegistrationResult,
    legacy_registration_workflow_id,
    registration_workflow_id,
)
from settings import Settings
from workflows.checkout import CheckoutWorkflow
from workflows.registration import (
    CONCURRENT_REGISTRATION_FAILED,
    REGISTERED_CONCURRENTLY,
    RegistrationWorkflow,
)
from workflows.saga import COMPENSATING, COMPENSATION_FAILED, ROLLBACK_PENDING

# How long asking a checkout whether it is undoing its account may take (the person waits).
_QUERY_TIMEOUT = timedelta(seconds=5)
T = TypeVar("T")

# How many concurrent registrations of one e-mail a request waits out before giving up.
_MAX_TURNS = 3


class SagaFailed(Exception):
    """The saga ended in failure: `code` is its failure type, `message` its words."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EmailTaken(Exception):
    """A concurrent registration of the same e-mail succeeded."""


class NoTurnLeft(Exception):
    """Concurrent registrations of this e-mail kept failing; this one gave up waiting."""


class RollbackPending(Exception):
    """The signup failed and what it created is still being undone (a compensation is being
    retried, or is parked for a person): the person should try again in a few minutes."""


class AttemptAlreadyStarted(Exception):
    """An adopted checkout attempt was started by another request meanwhile."""


class AttemptNotStarted(Exception):
    """Temporal could not be asked to start the attempt (it may have started anyway)."""


def _failed(exc: WorkflowFailureError | WorkflowUpdateFailedError) -> SagaFailed:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return SagaFailed(cause.type, cause.message)
    return SagaFailed(None, str(cause))


def _failure_type(exc: WorkflowUpdateFailedError) -> str | None:
    return exc.cause.type if isinstance(exc.cause, ApplicationError) else None


async def _within(answer: Awaitable[T], seconds: float) -> T:
    """`answer`, or TimeoutError after `seconds`. An update call cut short by the timeout raises
    the SDK's own error instead of CancelledError: it is a timeout all the same."""
    try:
        return await asyncio.wait_for(answer, seconds)
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise TimeoutError from exc


async def _outcome(handle: WorkflowHandle[Any, Any], settings: Settings) -> Any:
    """The saga's result; TimeoutError when it takes longer than people should wait."""
    return await asyncio.wait_for(
        handle.result(), settings.signup_answer_timeout_seconds.total_seconds()
    )


async def register(
    temporal: Client, settings: Settings, new: RegistrationInput
) -> RegistrationResult:
    """Start (or join) the registration saga of this e-mail and answer as soon as it is decided.

    One update-with-start: the `outcome` update returns the moment the run knows the answer
    (success, a failure once undone, or `rollback_pending` while a compensation is retried), not
    when the run closes. If a run is already going (a concurrent request with the same e-mail),
    its outcome decides: it succeeded, so this one is a duplicate (EmailTaken); it failed, so this
    one tries in its turn once that run has closed. Raises SagaFailed, EmailTaken,
    RollbackPending, NoTurnLeft, TimeoutError or RPCError.
    """
    workflow_id = registration_workflow_id(new.email, settings.secret("registration_id_key"))
    legacy = temporal.get_workflow_handle(legacy_registration_workflow_id(new.email))
    request_id = new.request_id or uuid.uuid4().hex
    new = new.model_copy(update={"request_id": request_id})
    deadline = asyncio.get_running_loop().time() + (
        settings.signup_answer_timeout_seconds.total_seconds()
    )

    def left() -> float:
        return max(deadline - asyncio.get_running_loop().time(), 0.0)

    for _ in range(_MAX_TURNS):
        # A run started before ids were hashed (`registration:<e-mail>`) may still be going: it
        # is a concurrent registration of this e-mail like any other.
        if await _is_running(legacy):
            try:
                await asyncio.wait_for(legacy.result(), left())
            except WorkflowFailureError:
                pass
            else:
                raise EmailTaken
        start = WithStartWorkflowOperation(
            RegistrationWorkflow.run,
            new,
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            # A new run is allowed after any earlier one: after a failure, and also after a
            # success whose account a failed first checkout has since removed.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            result = await _within(
                temporal.execute_update_with_start_workflow(
                    RegistrationWorkflow.outcome, request_id, start_workflow_operation=start
                ),
                left(),
            )
        except WorkflowUpdateFailedError as exc:
            code = _failure_type(exc)
            if code == ROLLBACK_PENDING:
                raise RollbackPending from exc
            if code == REGISTERED_CONCURRENTLY:
                raise EmailTaken from exc
            if code == CONCURRENT_REGISTRATION_FAILED:
                # Its turn is over once it closes (it may still be writing its journal).
                running = await start.workflow_handle()
                try:
                    await asyncio.wait_for(running.result(), left())
                except WorkflowFailureError:
                    pass
                continue
            raise _failed(exc) from exc
        return result
    raise NoTurnLeft


async def _is_running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def _forget(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Take the start's error off its handle: it is answered by the caller's exception."""
    with contextlib.suppress(Exception):
        await start.workflow_handle()


async def rolling_back_account(temporal: Client, workflow_id: str) -> bool:
    """Whether the checkout attempt `workflow_id` is undoing its account (a first attempt that
    failed): the e-mail is not free yet, and not taken either."""
    try:
        status = await temporal.get_workflow_handle(workflow_id).query(
            CheckoutWorkflow.status, rpc_timeout=_QUERY_TIMEOUT
        )
    except RPCError:
        return False
    # Only a first attempt (level 2) registers the account's compensations.
    return status.stage in (COMPENSATING, COMPENSATION_FAILED) and (
        "auth_user" in status.compensations_pending
    )


async def checkout(
    temporal: Client,
    settings: Settings,
    workflow_id: str,
    checkout: CheckoutInput,
    *,
    adopted: bool,
) -> CheckoutResult:
    """Run the checkout attempt `workflow_id` and answer as soon as its outcome is decided.

    Temporal's workflow id, not the clock, decides who runs an attempt: whichever request starts
    `checkout:<profile>:<n>` first. So a request that numbered the attempt but stalled (or died)
    before starting it never leads to two sagas: a later request starts that same attempt
    (adopting it), and the stalled one, when it wakes, finds it started and joins its outcome.
    A later request that finds the attempt already started gets AttemptAlreadyStarted, or
    RollbackPending when that attempt is undoing the account.
    Raises SagaFailed, RollbackPending, AttemptAlreadyStarted, AttemptNotStarted or TimeoutError.
    """
    start = WithStartWorkflowOperation(
        CheckoutWorkflow.run,
        checkout,
        id=workflow_id,
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # Our own attempt, started by a request that adopted it: its outcome is ours.
        id_conflict_policy=(
            WorkflowIDConflictPolicy.FAIL if adopted else WorkflowIDConflictPolicy.USE_EXISTING
        ),
    )
    timeout = settings.signup_answer_timeout_seconds.total_seconds()
    try:
        result = await _within(
            temporal.execute_update_with_start_workflow(
                CheckoutWorkflow.outcome, start_workflow_operation=start
            ),
            timeout,
        )
    except WorkflowAlreadyStartedError:
        await _forget(start)
        if adopted:
            if await rolling_back_account(temporal, workflow_id):
                raise RollbackPending from None
            raise AttemptAlreadyStarted from None
        # Our own attempt, already closed (a request that adopted it ran it to the end).
        handle = temporal.get_workflow_handle_for(CheckoutWorkflow.run, workflow_id)
        try:
            closed: CheckoutResult = await _outcome(handle, settings)
        except WorkflowFailureError as exc:
            raise _failed(exc) from exc
        return closed
    except WorkflowUpdateFailedError as exc:
        if _failure_type(exc) == ROLLBACK_PENDING:
            raise RollbackPending from exc
        raise _failed(exc) from exc
    except RPCError as exc:
        await _forget(start)
        # It may have started anyway: the attempt stays open, and the next request either
        # starts it or finds it running.
        raise AttemptNotStarted from exc
    return result
