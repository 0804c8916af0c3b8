"""The saga machinery both signup workflows share: compensations registered just before their step,
run in reverse, retried with backoff, and parked for a person (stage `compensation_failed`) until a
`retry` signal when they keep failing. Workflow code: deterministic, no I/O of its own."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, RetryState

from contracts.errors import ErrorCode
from contracts.search_attributes import STAGE

with workflow.unsafe.imports_passed_through():
    from activities.journal import JournalActivities
    from contracts.journal import LogEntry
    from contracts.signups import SagaStatus

# Stages of a signup saga, as the `status` query reports them. The EntregaStage search attribute
# is set from `compensating` on: only sagas that had to undo something show up in listings.
RUNNING = "running"
COMPLETED = "completed"
COMPENSATING = "compensating"
COMPENSATION_FAILED = "compensation_failed"
ROLLED_BACK = "rolled_back"

STEP_TIMEOUT = timedelta(seconds=15)
# The person waiting on the API is waiting on these: a few quick attempts, then undo.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=3,
)
# Undoing must not give up easily: about a minute of attempts before a person is asked to look.
COMPENSATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=7,
)
_JOURNAL_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))
# The journal line is a local activity for a few seconds, then a regular activity with backoff: a
# database outage shows as a pending activity instead of growing the history without bound.
BOUNDED_JOURNAL_PATCH = "storm-bounded-journal"
_JOURNAL_LOCAL_BUDGET = timedelta(seconds=10)
_JOURNAL_LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
)
_JOURNAL_BACKOFF = RetryPolicy(maximum_interval=timedelta(minutes=2))
# Sagas started from here on run a compensation's first attempt on its own, so that its failure
# answers the person waiting at once (`rollback_pending`) while the rest of the attempts go on.
ANSWER_EARLY_PATCH = "signups-answer-early"
# The answer (an update's failure type) while a compensation is still being retried or is parked.
ROLLBACK_PENDING = ErrorCode.ROLLBACK_PENDING


# A step's argument and result: `run_step` returns what its activity method returns.
A = TypeVar("A")
R = TypeVar("R")
# An activity method of some activities class, taking one argument.
Step = Callable[[Any, A], Awaitable[R]]


def failure_type(error: BaseException) -> str | None:
    """The ApplicationError type at the root of an activity failure, if any."""
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause.type if isinstance(cause, ApplicationError) else None


def failure_message(error: BaseException) -> str:
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


class StepFailed(Exception):
    """A saga step failed for good (its retries are spent, or the failure is permanent)."""

    def __init__(self, step: str, error: FailureError) -> None:
        super().__init__(f"{step}: {failure_message(error)}")
        self.step = step
        self.type = failure_type(error)
        self.message = failure_message(error)


@dataclass
class Compensation:
    step: str
    activity: Step[Any, None]
    arg: Any


class Saga:
    """One saga's state inside a workflow run."""

    def __init__(self) -> None:
        self.stage = RUNNING
        self.step: str | None = None
        self.last_error: str | None = None
        self._compensations: list[Compensation] = []
        self._retry_requested = False
        self._journal: list[asyncio.Task[Any]] = []
        self._journal_seq = 0
        self._bounded_journal: bool | None = None
        # For the saga-outcome metric: 1 registration, 2 first checkout, 3 later checkout.
        self.level = "1"
        self._answers_early = False
        # What the person waiting on this saga is told (the `outcome` update): the result, or an
        # ApplicationError whose type is the documented answer. The first decision stands.
        self._outcome: Any = None

    def begin(self) -> None:
        """Call first thing in `run`: decides the patches of this run before any command."""
        self._answers_early = workflow.patched(ANSWER_EARLY_PATCH)

    def decide(self, outcome: Any) -> None:
        """The answer is known: a result, or an ApplicationError typed as the answer."""
        if self._outcome is None:
            self._outcome = outcome

    async def outcome(self) -> Any:
        """Wait until the answer is known; return the result or raise the failure."""
        await workflow.wait_condition(lambda: self._outcome is not None)
        if isinstance(self._outcome, ApplicationError):
            failure = self._outcome
            raise ApplicationError(failure.message, type=failure.type, non_retryable=True)
        return self._outcome

    def status(self) -> SagaStatus:
        return SagaStatus(
            stage=self.stage,
            step=self.step,
            last_error=self.last_error,
            compensations_pending=[c.step for c in reversed(self._compensations)],
        )

    def add_compensation(self, step: str, activity: Step[A, None], arg: A) -> None:
        """Register how to undo `step`; call it just before running the step."""
        self._compensations.append(Compensation(step, activity, arg))

    async def run_step(self, step: str, activity: Step[A, R], arg: A) -> R:
        """Run one step with the step retry policy and journal its outcome.

        Steps are local activities: a person is waiting on the answer, and a local activity costs
        no round trip through the task queue. A worker dying mid-step only means the step runs
        again on another worker, which every step tolerates (they are idempotent)."""
        self.step = step
        self._journal_is_bounded()  # decided before the first local activity, see there
        try:
            result = await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
            )
        except FailureError as exc:
            # Local activities fail with the activity's own error, not wrapped in ActivityError.
            failed = StepFailed(step, exc)
            self.last_error = failed.message
            self.log("step_failed", step=step, error=self.last_error)
            raise failed from exc
        self.log("step_completed", step=step)
        return result

    def request_retry(self) -> None:
        self._retry_requested = True

    async def compensate(self) -> None:
        """Undo every registered step, newest first. A compensation that exhausts its retries parks
        the saga in `compensation_failed` until `request_retry`; none is ever skipped.

        Compensations are ordinary activities: off the happy path, their retries and backoff
        belong to the server and show in the Web UI as pending activities."""
        self._set_stage(COMPENSATING)
        while self._compensations:
            compensation = self._compensations[-1]
            try:
                await self._undo(compensation)
            except FailureError as exc:
                self.last_error = failure_message(exc)
                self.log("compensation_failed", step=compensation.step, error=self.last_error)
                self._set_stage(COMPENSATION_FAILED)
                self.decide(_rollback_pending())
                self._retry_requested = False
                await workflow.wait_condition(lambda: self._retry_requested)
                self.log("compensation_retry_requested", step=compensation.step)
                self._set_stage(COMPENSATING)
                continue
            self._compensations.pop()
            self.log("compensated", step=compensation.step)
        self._set_stage(ROLLED_BACK)
        self._count_outcome(ROLLED_BACK)

    async def _undo(self, compensation: Compensation) -> None:
        """One compensation with COMPENSATION_RETRY. Under ANSWER_EARLY_PATCH its first attempt
        is an activity of its own: when it fails, the answer is `rollback_pending` at once, and
        the remaining attempts follow on the same schedule (the first wait as a timer)."""
        policy = COMPENSATION_RETRY
        if not self._answers_early:
            await workflow.execute_activity_method(
                compensation.activity,
                compensation.arg,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=policy,
            )
            return
        try:
            await workflow.execute_activity_method(
                compensation.activity,
                compensation.arg,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=dataclasses.replace(policy, maximum_attempts=1),
            )
        except ActivityError as exc:
            self.decide(_rollback_pending())
            if exc.retry_state == RetryState.NON_RETRYABLE_FAILURE or policy.maximum_attempts == 1:
                raise
            await workflow.sleep(policy.initial_interval)
            longest = policy.maximum_interval or policy.initial_interval * 100
            await workflow.execute_activity_method(
                compensation.activity,
                compensation.arg,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=dataclasses.replace(
                    policy,
                    initial_interval=min(
                        policy.initial_interval * policy.backoff_coefficient, longest
                    ),
                    maximum_interval=longest,
                    # 0 stays 0: unlimited.
                    maximum_attempts=max(policy.maximum_attempts - 1, 0),
                ),
            )

    def complete(self) -> None:
        # Not upserted: EntregaStage marks only sagas that needed undoing, and the happy path
        # (the one a person waits on) saves a visibility write.
        self._compensations.clear()
        self.stage = COMPLETED
        self._count_outcome(COMPLETED)

    def _count_outcome(self, result: str) -> None:
        # Metrics are not commands (and are skipped on replay): no effect on determinism.
        workflow.metric_meter().create_counter(
            "entrega_saga_outcomes_total", "Signup sagas finished, by level and result"
        ).add(1, {"level": self.level, "result": result})

    def log(self, event: str, *, step: str | None = None, error: str | None = None) -> None:
        """Append to integration_logs without waiting; `flush` waits for every line.

        Lines may land out of order, so each carries `seq`, its place in the saga's story."""
        self._journal_seq += 1
        details: dict[str, Any] = {"seq": self._journal_seq}
        if step:
            details["step"] = step
        entry = LogEntry(
            workflow_id=workflow.info().workflow_id,
            event=event,
            stage=self.stage,
            error=error,
            details=details,
        )
        if self._journal_is_bounded():
            self._journal.append(asyncio.create_task(_record(entry)))
            return
        self._journal.append(
            workflow.start_local_activity_method(
                JournalActivities.record,
                entry,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_JOURNAL_RETRY,
            )
        )

    async def flush(self) -> None:
        await asyncio.gather(*self._journal)
        self._journal.clear()

    def _journal_is_bounded(self) -> bool:
        """Whether journal lines fall back to regular activities (patch storm-bounded-journal).

        Decided once, before the saga's first local activity: a first `patched` call right after
        a local activity resolves can read differently in the original run and in its replay."""
        if self._bounded_journal is None:
            self._bounded_journal = workflow.patched(BOUNDED_JOURNAL_PATCH)
        return self._bounded_journal

    def _set_stage(self, stage: str) -> None:
        if stage != self.stage:
            self.stage = stage
            workflow.upsert_search_attributes([STAGE.value_set(stage)])
            self.log("stage_changed")


def _rollback_pending() -> ApplicationError:
    return ApplicationError(
        "a compensation failed; it is being retried", type=ROLLBACK_PENDING, non_retryable=True
    )


async def _record(entry: LogEntry) -> None:
    """One journal line: local for seconds, then a regular activity retried with backoff."""
    try:
        await workflow.execute_local_activity_method(
            JournalActivities.record,
            entry,
            start_to_close_timeout=_JOURNAL_LOCAL_BUDGET,
            schedule_to_close_timeout=_JOURNAL_LOCAL_BUDGET,
            retry_policy=_JOURNAL_LOCAL_RETRY,
        )
    except FailureError:
        await workflow.execute_activity_method(
            JournalActivities.record,
            entry,
            start_to_close_timeout=_JOURNAL_LOCAL_BUDGET,
            retry_policy=_JOURNAL_BACKOFF,
        )


class SagaWorkflow:
    """What every signup saga workflow shares: its Saga, the `retry` signal that resumes a parked
    compensation, and the `status` query. Subclasses add `@workflow.defn` and their `run`."""

    def __init__(self) -> None:
        self._saga = Saga()

    @workflow.signal
    def retry(self) -> None:
        """Try the parked compensation again."""
        self._saga.request_retry()

    @workflow.query
    def status(self) -> SagaStatus:
        return self._saga.status()
