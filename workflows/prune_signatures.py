"""The `prune-webhook-signatures` schedule's workflow: forget Mercado Pago signatures older than
twice the freshness window (a replay that old is refused for staleness anyway)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconcile_providers import ReconcileActivities
    from contracts.reconcile import PAGE_RETRY, PAGE_TIMEOUT, PruneInput


@workflow.defn
class PruneWebhookSignaturesWorkflow:
    @workflow.run
    async def run(self, params: PruneInput) -> int:
        pruned = await workflow.execute_activity_method(
            ReconcileActivities.prune_signatures,
            params,
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=PAGE_RETRY,
        )
        return pruned
