"""One Asaas payment's workflow, id `asaas-payment:<payment id>`: apply what Asaas records for it.

The webhook hands each event over with signal-with-start and answers 200 once the hand-off is in
Temporal's history; the activity re-reads the payment from Asaas (retrying with backoff through
an Asaas outage) and applies it idempotently. An event arriving while the payment is being
applied makes the workflow apply it once more, so the last state Asaas reports always lands.
Later events after the workflow closed start a new run under the same id. The scheduled Asaas
reconciliation hands payments over the same way.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.asaas_payments import AsaasPaymentActivities
    from contracts.asaas import SIGNAL, PaymentOutcome, PaymentRef

# Asaas may be down for a while, and a checkout may still be settling its subscription: keep
# trying, never faster than this backoff, never giving up (the payment must land).
APPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
APPLY_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class AsaasPaymentWorkflow:
    def __init__(self) -> None:
        self._events = 0

    @workflow.signal(name=SIGNAL)
    def payment_event(self, event: str) -> None:
        """Asaas sent an event about this payment (its name, for the history only)."""
        self._events += 1

    @workflow.run
    async def run(self, ref: PaymentRef) -> PaymentOutcome:
        while True:
            seen = self._events
            outcome: PaymentOutcome = await workflow.execute_activity_method(
                AsaasPaymentActivities.apply_payment,
                ref,
                start_to_close_timeout=APPLY_TIMEOUT,
                retry_policy=APPLY_RETRY,
            )
            if self._events == seen:
                return outcome
