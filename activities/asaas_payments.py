"""Applying an Asaas payment: the one place, keyed by the Asaas payment id, where a subscription
charge changes a profile. The webhook only names the payment; this re-reads it from Asaas and
acts on Asaas's record, never on what was posted to us (the webhook body is not signed).

It is also where a subscription nobody saved is noticed: a create whose answer was lost can land
in Asaas after its checkout attempt finished, and its first charge leads here. Each attempt keeps
exactly one subscription (the one it saved), so the stray one is deleted.
"""

from __future__ import annotations

from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import BRAZIL, _provider_failure
from contracts.asaas import APPLY_PAYMENT, PaymentOutcome, PaymentRef
from contracts.errors import ErrorCode
from db import profiles as db_profiles
from db import subscriptions
from providers.clients import ProviderClients
from providers.errors import ProviderError

# Asaas statuses of a charge that has been paid (RECEIVED_IN_CASH: marked paid by hand).
PAID = frozenset({"CONFIRMED", "RECEIVED", "RECEIVED_IN_CASH"})


class AsaasPaymentActivities:
    def __init__(self, pool: AsyncConnectionPool, providers: ProviderClients) -> None:
        self._pool = pool
        self._providers = providers

    @activity.defn(name=APPLY_PAYMENT)
    async def apply_payment(self, ref: PaymentRef) -> PaymentOutcome:
        """Re-read the payment from Asaas and apply it; idempotent, so any number of events (or a
        reconciliation) may ask for the same payment."""
        try:
            payment = await self._providers.asaas.get_payment(ref.payment_id)
        except ProviderError as exc:
            _provider_failure(exc)
        if payment is None or payment.deleted:
            return PaymentOutcome(payment_id=ref.payment_id, outcome="unknown_payment")
        subscription_id = payment.subscription
        outcome = PaymentOutcome(
            payment_id=payment.id,
            outcome="not_a_subscription_payment",
            subscription_id=subscription_id,
            status=payment.status,
        )
        if subscription_id is None:
            return outcome
        async with self._pool.connection() as conn:
            role = await subscriptions.subscription_role(conn, subscription_id)
        if role is None:
            outcome.outcome = await self._stray_subscription(subscription_id)
            return outcome
        if role == "replaced":
            outcome.outcome = "subscription_replaced"
            return outcome
        if payment.status not in PAID:
            outcome.outcome = "not_paid"
            return outcome
        due = payment.due_date or datetime.now(BRAZIL).date()
        async with self._pool.connection() as conn, conn.transaction():
            outcome.outcome = await subscriptions.apply_paid_period(
                conn, payment_id=payment.id, subscription_id=subscription_id, due_date=due
            )
        return outcome

    async def _stray_subscription(self, subscription_id: str) -> str:
        """A subscription that no profile or attempt has saved: a duplicate of its checkout
        attempt (deleted), a checkout still choosing (retry later), or not ours (left alone,
        `entrega reconcile` shows it)."""
        asaas = self._providers.asaas
        try:
            subscription = await asaas.get_subscription(subscription_id)
        except ProviderError as exc:
            _provider_failure(exc)
        if subscription is None or not subscription.external_reference:
            return "unknown_subscription"
        async with self._pool.connection() as conn:
            attempt = await db_profiles.get_checkout_attempt(conn, subscription.external_reference)
        if attempt is None:
            return "unknown_subscription"
        if attempt.subscription_id == subscription_id or (
            attempt.subscription_id is None and attempt.outcome is None
        ):
            # Saved just now, or the attempt has not chosen yet: decide on a later try.
            raise ApplicationError(
                f"checkout {attempt.workflow_id} has not settled its subscription yet",
                type=ErrorCode.CHECKOUT_RUNNING,
            )
        # The attempt kept another one (or was undone): this one must not bill anybody.
        try:
            await asaas.delete_subscription(subscription_id)
        except ProviderError as exc:
            _provider_failure(exc)
        activity.logger.warning(
            "deleted Asaas subscription %s: a duplicate of checkout %s",
            subscription_id,
            attempt.workflow_id,
        )
        return "duplicate_deleted"
