"""The `reconcile-mercadopago` schedule's workflow: Mercado Pago's record is the final word.

It pages through the payments updated within the lookback window, oldest first, and the page
activity hands every payment the orders table does not yet reflect to its purchase workflow
exactly as the gateway does. Windows of consecutive runs overlap, so a payment updated while a
run pages (and so shifted between pages) is read again by the next run.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.reconcile_providers import ReconcileActivities
    from contracts.reconcile import (
        PAGE_RETRY,
        PAGE_TIMEOUT,
        PageRequest,
        ReconcileInput,
        ReconcileResult,
    )


@workflow.defn
class ReconcileMercadoPagoWorkflow:
    @workflow.run
    async def run(self, params: ReconcileInput) -> ReconcileResult:
        end = workflow.now()
        begin = end - params.lookback
        result = ReconcileResult(provider="mercadopago", begin=begin, end=end)
        offset = 0
        while True:
            page = await workflow.execute_activity_method(
                ReconcileActivities.mercadopago_page,
                PageRequest(begin=begin, end=end, offset=offset, limit=params.page_size),
                start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=PAGE_RETRY,
            )
            result.add(page)
            if not page.has_more or page.read == 0:
                return result
            offset += page.read
