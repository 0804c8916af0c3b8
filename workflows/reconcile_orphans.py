"""The `reconcile-orphans` schedule's workflow: `entrega reconcile`'s check, hourly.

Findings are logged (kinds and ids only) and counted by the activity, and returned; nothing is
fixed here: an orphan needs a person's judgement.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.reconcile import (
        FIND_ORPHANS,
        PAGE_RETRY,
        PAGE_TIMEOUT,
        OrphansInput,
        OrphansResult,
    )


@workflow.defn
class ReconcileOrphansWorkflow:
    @workflow.run
    async def run(self, params: OrphansInput) -> OrphansResult:
        result: OrphansResult = await workflow.execute_activity(
            FIND_ORPHANS,
            params,
            result_type=OrphansResult,
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=PAGE_RETRY,
        )
        return result
