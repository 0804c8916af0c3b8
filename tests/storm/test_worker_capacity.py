"""The worker's capacity and shutdown grace come from settings, and its pool fits them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from providers.clients import open_provider_clients
from tests.conftest import make_settings
from worker import build_email_worker, build_worker

pytestmark = [pytest.mark.db, pytest.mark.temporal]


async def test_settings_reach_the_workers(settings, pool, temporal_client, task_queue) -> None:
    """Concurrency, grace and the e-mail rate limit set in settings are what the Workers run."""
    tuned = make_settings(
        database_url=settings.database_url,
        worker_max_concurrent_activities=7,
        worker_max_concurrent_local_activities=5,
        worker_max_concurrent_workflow_tasks=9,
        worker_max_concurrent_email_activities=3,
        worker_graceful_shutdown="2m",
        resend_rate_limit=1.5,
    )
    async with open_provider_clients(tuned) as providers:
        main = build_worker(temporal_client, tuned, pool, providers, task_queue=task_queue)
        email = build_email_worker(temporal_client, tuned, pool, providers, task_queue=task_queue)
    config = main.config()
    assert config["max_concurrent_activities"] == 7
    assert config["max_concurrent_local_activities"] == 5
    assert config["max_concurrent_workflow_tasks"] == 9
    assert config["graceful_shutdown_timeout"] == timedelta(minutes=2)
    mail = email.config()
    assert mail["task_queue"] == f"{task_queue}-email"
    assert mail["max_concurrent_activities"] == 3
    # The limit is in requests: each carries up to 100 e-mails (one e-mail task each).
    assert mail["max_task_queue_activities_per_second"] == 1.5 * 100
    assert tuned.worker_pool_size == 7 + 5 + 3


def test_defaults_are_documented_values() -> None:
    """By default the grace exceeds the step timeout and the pool has a connection per slot,
    the e-mail activities (200 slots, to fill batches) sharing 8."""
    defaults = make_settings()
    assert defaults.worker_graceful_shutdown > defaults.purchase_step_timeout_seconds
    assert defaults.worker_slots == 16 + 8 + 200
    assert defaults.worker_pool_size == 16 + 8 + 8
    assert defaults.resend_rate_limit == 2


def test_inconsistent_capacity_is_refused() -> None:
    """A grace below the step timeout, or a pool smaller than the slots, is a start-up error."""
    with pytest.raises(ValueError, match="WORKER_GRACEFUL_SHUTDOWN"):
        make_settings(worker_graceful_shutdown="5s")
    with pytest.raises(ValueError, match="WORKER_DB_POOL_MAX_SIZE"):
        make_settings(worker_db_pool_max_size=4)
