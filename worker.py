"""The Temporal worker: one client, one pool and one set of provider clients per process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.accounts import AccountActivities
from activities.asaas_payments import AsaasPaymentActivities
from activities.catalogue import CatalogueActivities
from activities.journal import JournalActivities
from activities.purchases import PurchaseActivities
from activities.reconcile_providers import ReconcileActivities
from db.pool import open_pool
from providers.clients import ProviderClients, open_provider_clients
from providers.resend import MAX_BATCH
from settings import Settings
from telemetry import metrics, tracing
from telemetry.process import configure_process
from workflows.asaas_payment import AsaasPaymentWorkflow
from workflows.checkout import CheckoutWorkflow
from workflows.client import connect
from workflows.prune_signatures import PruneWebhookSignaturesWorkflow
from workflows.purchase import PurchaseWorkflow
from workflows.reconcile_asaas import ReconcileAsaasWorkflow
from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow
from workflows.reconcile_orphans import ReconcileOrphansWorkflow
from workflows.registration import RegistrationWorkflow

WORKFLOWS: Sequence[type] = [
    PurchaseWorkflow,
    RegistrationWorkflow,
    CheckoutWorkflow,
    AsaasPaymentWorkflow,
    ReconcileMercadoPagoWorkflow,
    ReconcileAsaasWorkflow,
    ReconcileOrphansWorkflow,
    PruneWebhookSignaturesWorkflow,
]
log = logging.getLogger("entrega.worker")

# Workflows run outside the SDK's sandbox. The default sandbox imports each workflow's modules
# afresh for every run (about 12 ms of worker CPU per run for a purchase or a saga); with every
# module passed through, it still runs each activation, and every payload's serialization
# context, through `exec` of a code string under its import hooks (about 13% of the worker's CPU
# during registrations), while its refusal of the clock, randomness and I/O no longer reaches
# anything. The strict sandbox is kept where it can fail the build: the replay tests replay the
# committed histories of every workflow type, and the time-skipping tests run PurchaseWorkflow
# and RegistrationWorkflow, in the SDK's default sandbox, where such a call fails. (The stack
# tests use `build_worker`, so this runner.) Workflow modules hold no mutable state at module
# level.
WORKFLOW_RUNNER = UnsandboxedWorkflowRunner()


def build_activities(
    settings: Settings, pool: AsyncConnectionPool, providers: ProviderClients
) -> list[Callable[..., Any]]:
    """Every activity the worker serves, bound to the process's shared resources."""
    journal = JournalActivities(pool)
    purchases = PurchaseActivities(settings, pool, providers)
    accounts = AccountActivities(pool, providers, settings)
    asaas_payments = AsaasPaymentActivities(pool, providers)
    return [
        journal.record,
        purchases.fetch_payment,
        purchases.set_stage,
        purchases.create_user,
        purchases.send_credentials,
        purchases.send_confirmation,
        purchases.deactivate_user,
        CatalogueActivities(pool).match_product,
        *accounts.all(),
        asaas_payments.apply_payment,
        *ReconcileActivities(settings, pool, providers).all(),
    ]


def build_email_activities(
    settings: Settings, pool: AsyncConnectionPool, providers: ProviderClients
) -> list[Callable[..., Any]]:
    """The activities that call Resend: served on the e-mail task queue as well."""
    purchases = PurchaseActivities(settings, pool, providers)
    return [purchases.send_credentials, purchases.send_confirmation]


def build_worker(
    client: Client,
    settings: Settings,
    pool: AsyncConnectionPool,
    providers: ProviderClients,
    *,
    task_queue: str | None = None,
) -> Worker:
    """The main worker: every workflow and activity (e-mails too, for runs that predate the
    e-mail queue), with the capacity and shutdown grace the settings give."""
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(settings, pool, providers),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_local_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=settings.worker_graceful_shutdown,
    )


def build_email_worker(
    client: Client,
    settings: Settings,
    pool: AsyncConnectionPool,
    providers: ProviderClients,
    *,
    task_queue: str | None = None,
) -> Worker:
    """The e-mail worker. Its activities share the process's mailer, which sends up to 100
    e-mails per Resend request and takes each request's slot from PostgreSQL, so all workers
    together stay within RESEND_RATE_LIMIT requests per second; the server hands out at most
    that many batches' worth of e-mail tasks per second across every worker."""
    return Worker(
        client,
        task_queue=f"{task_queue}-email" if task_queue else settings.email_task_queue,
        activities=build_email_activities(settings, pool, providers),
        max_concurrent_activities=settings.worker_max_concurrent_email_activities,
        max_task_queue_activities_per_second=settings.resend_rate_limit * MAX_BATCH,
        graceful_shutdown_timeout=settings.worker_graceful_shutdown,
    )


@asynccontextmanager
async def serve(
    client: Client,
    settings: Settings,
    pool: AsyncConnectionPool,
    providers: ProviderClients,
    *,
    task_queue: str | None = None,
) -> AsyncIterator[None]:
    """Run the main and the e-mail worker until the block ends, then shut both down gracefully."""
    async with AsyncExitStack() as stack:
        for build in (build_worker, build_email_worker):
            worker = build(client, settings, pool, providers, task_queue=task_queue)
            await stack.enter_async_context(worker)
        yield


async def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight activity attempts and exit."""
    assert settings.database_url, "DATABASE_URL is not set"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = None
    if settings.worker_metrics_address:
        runtime = metrics.worker_runtime(settings.worker_metrics_address)
        log.info(
            "worker metrics at http://%s/metrics",
            settings.worker_metrics_address,
            extra={"event": "metrics_serving"},
        )
    client = await connect(settings, runtime=runtime)
    pool = await open_pool(settings.database_url, max_size=settings.worker_pool_size)
    try:
        async with open_provider_clients(settings) as providers:
            async with serve(client, settings, pool, providers):
                await stop.wait()
    finally:
        await pool.close()
        tracing.shutdown()


def main() -> None:
    settings = Settings()
    configure_process("worker", settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
