"""One mapping from provider errors to Temporal failures: Retry-After honoured on purchases, and
a 429 never spends the retry budget that ends in `failed_permanent`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.failures import provider_failure
from activities.purchases import PurchaseActivities
from contracts.errors import ErrorCode
from contracts.purchases import FetchPayment
from providers.clients import open_provider_clients
from providers.errors import PermanentError, RateLimitedError, TransientError
from tests.purchases.stack import purchase_stack, stack_settings
from workflows.purchase_client import query_status

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


def test_mapping_honours_retry_after() -> None:
    """429 → retryable `provider_rate_limited` after Retry-After; 503 → retryable with its wait;
    a refusal → non-retryable."""
    limited = provider_failure(RateLimitedError("resend", "slow down", status=429, retry_after=3))
    assert limited.type == ErrorCode.PROVIDER_RATE_LIMITED and not limited.non_retryable
    assert limited.next_retry_delay == timedelta(seconds=3)
    down = provider_failure(TransientError("lovable", "down", status=503, retry_after=7))
    assert down.next_retry_delay == timedelta(seconds=7) and not down.non_retryable
    refused = provider_failure(PermanentError("lovable", "bad key", status=401))
    assert refused.non_retryable and "HTTP 401" in refused.message


async def test_purchase_activity_passes_retry_after_to_temporal(sandbox_settings, pool, sandbox):
    """A 429 with Retry-After at Mercado Pago reaches Temporal as a wait, not as a raw error."""
    await sandbox.fault("mercadopago", "get_payment", status=429, retry_after=4)
    async with open_provider_clients(sandbox_settings) as providers:
        activities = PurchaseActivities(sandbox_settings, pool, providers)
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(
                activities.fetch_payment, FetchPayment(provider_order_id="123")
            )
    assert raised.value.next_retry_delay == timedelta(seconds=4)


async def test_429s_do_not_park_the_order(
    database_url, pool, temporal_client, sandbox, task_queue
) -> None:
    """Resend answering 429 more times than the whole retry schedule allows still ends
    `completed`: a slow-down is waited out, never counted towards `failed_permanent`."""
    settings = stack_settings(database_url, sandbox.url, temporal_client, task_queue)
    # 2 quick attempts x (1 + 2 scheduled rounds) = 6 attempts before failed_permanent.
    await sandbox.fault("resend", "send_batch", status=429, retry_after=1, times=16)
    async with purchase_stack(settings, pool, temporal_client, sandbox) as stack:
        payment_id = await stack.mp_payment(email="lento@example.com")
        assert (await stack.mp_notify(payment_id))["status_code"] == 200
        order_id = f"purchase:mercadopago:{payment_id}"
        await stack.wait_stage(order_id, "completed", seconds=60)
        status = await query_status(temporal_client, order_id)
        assert "failed_permanent" not in [entry.stage for entry in status.history]
        history = await temporal_client.get_workflow_handle(order_id).fetch_history()
        queues = {
            event.activity_task_scheduled_event_attributes.activity_type.name: (
                event.activity_task_scheduled_event_attributes.task_queue.name
            )
            for event in history.events
            if event.HasField("activity_task_scheduled_event_attributes")
        }
        # E-mails go through the rate-limited queue every worker shares.
        assert queues["purchases.send_credentials"] == f"{task_queue}-email"
