"""What the Asaas payment workflow, its activity and the webhook exchange (pydantic, no I/O)."""

from __future__ import annotations

from pydantic import BaseModel

# Activity name (`AsaasPaymentActivities.apply_payment`).
APPLY_PAYMENT = "asaas.apply_payment"
# The signal each webhook event (or reconciliation) delivers with signal-with-start.
SIGNAL = "payment_event"


def workflow_id(payment_id: str) -> str:
    """`asaas-payment:<payment id>`: every event of one payment lands in one workflow."""
    return f"asaas-payment:{payment_id}"


class PaymentRef(BaseModel):
    payment_id: str


class PaymentOutcome(BaseModel):
    """What applying the payment did: `applied`, `already_applied`, `not_paid`,
    `subscription_replaced`, `duplicate_deleted`, `unknown_subscription`, `unknown_payment` or
    `not_a_subscription_payment`."""

    payment_id: str
    outcome: str
    subscription_id: str | None = None
    status: str | None = None
