"""Starting the signup sagas from outside and waiting for their outcome (the API's side).

The HTTP answers are the route's: this module speaks in saga outcomes and a few exceptions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
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
from workflows.registration import RegistrationWorkflow

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


class AttemptAlreadyStarted(Exception):
    """An adopted checkout attempt was started by another request meanwhile."""


class AttemptNotStarted(Exception):
    """Temporal could not be asked to start the attempt (it may have started anyway)."""


def _failed(exc: WorkflowFailureError) -> SagaFailed:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return SagaFailed(cause.type, cause.message)
    return SagaFailed(None, str(cause))


async def _outcome(handle: WorkflowHandle[Any, Any], settings: Settings) -> Any:
    """The saga's result; TimeoutError when it takes longer than people should wait."""
    return await asyncio.wait_for(
        handle.result(), settings.signup_answer_timeout_seconds.total_seconds()
    )


async def register(
    temporal: Client, settings: Settings, new: RegistrationInput
) -> RegistrationResult:
    """Start the registration saga of this e-mail and wait for it.

    If one is already running (a concurrent request with the same e-mail), its outcome decides:
    it succeeded, so this one is a duplicate (EmailTaken); it failed, so this one may try in its
    turn. Raises SagaFailed, EmailTaken, NoTurnLeft, TimeoutError or RPCError.
    """
    workflow_id = registration_workflow_id(new.email, settings.secret("registration_id_key"))
    legacy = temporal.get_workflow_handle(legacy_registration_workflow_id(new.email))
    for _ in range(_MAX_TURNS):
        # A run started before ids were hashed (`registration:<e-mail>`) may still be going: it
        # is a concurrent registration of this e-mail like any other.
        if await _is_running(legacy):
            try:
                await _outcome(legacy, settings)
            except WorkflowFailureError:
                pass
            else:
                raise EmailTaken
        try:
            handle = await temporal.start_workflow(
                RegistrationWorkflow.run,
                new,
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
                # A new run is allowed after any earlier one: after a failure, and also after a
                # success whose account a failed first checkout has since removed.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            running = temporal.get_workflow_handle(workflow_id)
            try:
                await _outcome(running, settings)
            except WorkflowFailureError:
                continue
            raise EmailTaken from None
        try:
            result: RegistrationResult = await _outcome(handle, settings)
        except WorkflowFailureError as exc:
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


async def checkout(
    temporal: Client,
    settings: Settings,
    workflow_id: str,
    checkout: CheckoutInput,
    *,
    adopted: bool,
) -> CheckoutResult:
    """Run the checkout attempt `workflow_id` and wait for its outcome.

    Temporal's workflow id, not the clock, decides who runs an attempt: whichever request starts
    `checkout:<profile>:<n>` first. So a request that numbered the attempt but stalled (or died)
    before starting it never leads to two sagas: a later request starts that same attempt
    (adopting it), and the stalled one, when it wakes, finds it started and waits for its
    outcome. A later request that finds the attempt already started gets AttemptAlreadyStarted.
    Raises SagaFailed, AttemptAlreadyStarted, AttemptNotStarted or TimeoutError.
    """
    try:
        handle: WorkflowHandle[Any, Any] = await temporal.start_workflow(
            CheckoutWorkflow.run,
            checkout,
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        if adopted:
            raise AttemptAlreadyStarted from None
        # Our own attempt, started by a request that adopted it: its outcome is ours.
        handle = temporal.get_workflow_handle_for(CheckoutWorkflow.run, workflow_id)
    except RPCError as exc:
        # It may have started anyway: the attempt stays open, and the next request either
        # starts it or finds it running.
        raise AttemptNotStarted from exc
    try:
        result: CheckoutResult = await _outcome(handle, settings)
    except WorkflowFailureError as exc:
        raise _failed(exc) from exc
    return result
