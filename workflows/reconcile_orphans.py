"""The `reconcile-orphans` schedule's workflow: `entrega reconcile`'s check, hourly.

Findings are logged (kinds and ids only) and counted by the activity, and returned; nothing is
fixed here: an orphan needs a person's judgement.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconcile_providers import ReconcileActivities
    from contracts.reconcile import (
        PAGE_RETRY,
        PAGE_TIMEOUT,
        OrphansInput,
        OrphansResult,
    )


@workflow.defn
class ReconcileOrphansWorkflow:
    @workflow.run
    async def run(self, params: OrphansInput) -> OrphansResult:
        result = await workflow.execute_activity_method(
            ReconcileActivities.find_orphans,
            params,
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=PAGE_RETRY,
        )
        return result
