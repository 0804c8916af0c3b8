"""The `reconcile-asaas` schedule's workflow: every paid subscription charge has its period.

Two sweeps of `GET /v3/payments`: charges RECEIVED within the lookback window (by payment
date), and charges still CONFIRMED (a card payment stays CONFIRMED until Asaas settles it, about
a month; the list is short, so it is read whole). The page activity hands every paid charge of
a profile's current subscription whose period is not recorded to `asaas-payment:<id>`, the same
workflow the webhook hands it to, so the two never both apply it.
"""

from __future__ import annotations

from typing import get_args

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconcile_providers import ReconcileActivities
    from contracts.reconcile import (
        PAGE_RETRY,
        PAGE_TIMEOUT,
        AsaasSweep,
        PageRequest,
        ReconcileInput,
        ReconcileResult,
    )


@workflow.defn
class ReconcileAsaasWorkflow:
    @workflow.run
    async def run(self, params: ReconcileInput) -> ReconcileResult:
        end = workflow.now()
        begin = end - params.lookback
        result = ReconcileResult(provider="asaas", begin=begin, end=end)
        for sweep in get_args(AsaasSweep):
            offset = 0
            while True:
                page = await workflow.execute_activity_method(
                    ReconcileActivities.asaas_page,
                    PageRequest(
                        begin=begin, end=end, offset=offset, limit=params.page_size, sweep=sweep
                    ),
                    start_to_close_timeout=PAGE_TIMEOUT,
                    retry_policy=PAGE_RETRY,
                )
                result.add(page)
                if not page.has_more or page.read == 0:
                    break
                offset += page.read
        return result
