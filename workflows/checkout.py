"""Checkout saga: the Asaas customer and subscription of a profile. Workflow id
`checkout:<profile id>:<attempt n>`.

A first attempt (the profile has neither an Asaas customer nor a subscription) is level 2: any
failure undoes everything, the account included. A later attempt is level 3: a failure undoes
only what this attempt created, and the account stays.

A later attempt replaces the profile's subscription: the previous one is deleted in Asaas as the
last step, once the new one is saved, so that the customer is never billed twice; if that fails
for good, the new subscription is undone instead and the previous one stays.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.saga import STEP_TIMEOUT, SagaWorkflow, StepFailed

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from contracts.errors import ErrorCode
    from contracts.signups import (
        AttemptOutcome,
        AuthUserCleanup,
        AuthUserRef,
        CheckoutInput,
        CheckoutResult,
        CustomerCleanup,
        CustomerSpec,
        PreviousSubscription,
        SavedCustomer,
        SavedSubscription,
        SubscriptionCleanup,
        SubscriptionSpec,
    )

# Patch id of the step that deletes the replaced subscription.
REPLACE_PREVIOUS = "cancel-previous-subscription"


@workflow.defn
class CheckoutWorkflow(SagaWorkflow):
    @workflow.update
    async def outcome(self) -> CheckoutResult:
        """The attempt's answer as soon as it is known (update-with-start): its result, its
        failure once undone, or `rollback_pending` while a compensation is being retried."""
        result: CheckoutResult = await self._saga.outcome()
        return result

    @workflow.run
    async def run(self, checkout: CheckoutInput) -> CheckoutResult:
        saga = self._saga
        saga.begin()
        saga.level = "2" if checkout.is_first_attempt else "3"
        this_workflow = workflow.info().workflow_id
        try:
            result = await self._steps(checkout, this_workflow)
        except StepFailed as failed:
            await saga.compensate()
            answer = (
                ErrorCode.REGISTRATION_ROLLED_BACK
                if checkout.is_first_attempt
                else ErrorCode.CHECKOUT_FAILED
            )
            failure = ApplicationError(failed.message, type=answer, non_retryable=True)
            # Closed first: a next request of the profile must not find the attempt in flight.
            await self._finish(this_workflow, "rolled_back")
            saga.decide(failure)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise failure from failed
        saga.complete()
        await self._finish(this_workflow, "completed")
        saga.decide(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _steps(self, checkout: CheckoutInput, this_workflow: str) -> CheckoutResult:
        saga = self._saga
        if checkout.is_first_attempt:
            # Level 2: registered first, so they run last: the account goes after the billing.
            saga.add_compensation(
                "auth_user",
                AccountActivities.delete_auth_user,
                AuthUserCleanup(auth_user_id=checkout.auth_user_id),
            )
            saga.add_compensation(
                "profile",
                AccountActivities.delete_profile,
                AuthUserRef(auth_user_id=checkout.auth_user_id),
            )

        customer_id = checkout.asaas_customer_id
        if customer_id is None:
            # Any customer carrying this profile's externalReference is this attempt's to undo:
            # the profile had none saved when the attempt began.
            saga.add_compensation(
                "asaas_customer",
                AccountActivities.delete_asaas_customer,
                CustomerCleanup(profile_id=checkout.profile_id),
            )
            customer = await saga.run_step(
                "asaas_customer",
                AccountActivities.ensure_asaas_customer,
                CustomerSpec(
                    profile_id=checkout.profile_id,
                    name=checkout.name,
                    email=checkout.email,
                    phone=checkout.phone,
                    cpf_cnpj=checkout.cpf_cnpj,
                ),
            )
            customer_id = customer.customer_id
            saved_customer = SavedCustomer(profile_id=checkout.profile_id, customer_id=customer_id)
            saga.add_compensation(
                "save_customer", AccountActivities.clear_asaas_customer, saved_customer
            )
            await saga.run_step(
                "save_customer", AccountActivities.save_asaas_customer, saved_customer
            )

        saga.add_compensation(
            "subscription",
            AccountActivities.delete_subscription,
            SubscriptionCleanup(external_reference=this_workflow),
        )
        subscription = await saga.run_step(
            "subscription",
            AccountActivities.create_subscription,
            SubscriptionSpec(
                customer_id=customer_id,
                billing_type=checkout.billing_type,
                price_cents=checkout.price_cents,
                cycle=checkout.cycle,
                description=f"Assinatura {checkout.plan_name}",
                external_reference=this_workflow,
            ),
        )
        saved_subscription = SavedSubscription(
            profile_id=checkout.profile_id,
            workflow_id=this_workflow,
            subscription_id=subscription.subscription_id,
            previous_subscription_id=checkout.subscription_id,
        )
        saga.add_compensation(
            "save_subscription", AccountActivities.clear_subscription, saved_subscription
        )
        await saga.run_step(
            "save_subscription", AccountActivities.save_subscription, saved_subscription
        )
        # Last, with nothing after it to fail: deleting the old subscription is the one step the
        # compensations cannot undo. Histories recorded before this step existed replay without it.
        if checkout.subscription_id is not None and workflow.patched(REPLACE_PREVIOUS):
            await saga.run_step(
                "cancel_previous_subscription",
                AccountActivities.cancel_previous_subscription,
                PreviousSubscription(subscription_id=checkout.subscription_id),
            )
        return CheckoutResult(
            asaas_customer_id=customer_id, subscription_id=subscription.subscription_id
        )

    async def _finish(self, this_workflow: str, outcome: str) -> None:
        # Closing the attempt is bookkeeping, not a step: it cannot fail the saga.
        await workflow.execute_local_activity_method(
            AccountActivities.finish_checkout,
            AttemptOutcome(workflow_id=this_workflow, outcome=outcome),
            start_to_close_timeout=STEP_TIMEOUT,
        )
        await self._saga.flush()
