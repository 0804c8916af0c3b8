"""The scheduled reconciliation's activities: read a page of a provider's payments, ask the
database in one query which ones Entrega does not reflect yet, and hand those off exactly as the
webhooks do. Also the hourly orphan check and the pruning of old webhook signatures.

A recovered payment leaves three traces: an `integration_logs` row `recovered_by_reconcile` under
its workflow id, a log line, and the `entrega_reconcile_recovered_total` counter (the SDK's metric
meter, exported wherever the worker's Temporal runtime exports metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities.accounts import BRAZIL, _provider_failure
from activities.asaas_payments import PAID
from activities.catalogue import judge, mercadopago_items
from activities.reconcile import find_orphans, running_sagas
from contracts.asaas import workflow_id as asaas_workflow_id
from contracts.purchases import (
    MP_STATES,
    Payment,
    PaymentNotice,
    workflow_id,
)
from contracts.reconcile import (
    ASAAS_PAGE,
    FIND_ORPHANS,
    MERCADOPAGO_PAGE,
    PRUNE_SIGNATURES,
    RECOVERED_EVENT,
    OrphanFinding,
    OrphansInput,
    OrphansResult,
    PageRequest,
    PageResult,
    PruneInput,
)
from db import orders, products
from db import reconcile as db_reconcile
from db.journal import insert_log
from providers.clients import ProviderClients
from providers.errors import ProviderError
from providers.mercadopago import MercadoPagoPayment
from settings import Settings
from telemetry import events
from workflows.asaas_payment_client import hand_off_payment
from workflows.purchase_client import hand_off, purchase_config

log = logging.getLogger(__name__)

# Which of these payments (none of which has an order yet) pay for something Entrega sells?
# The merchant's account also takes payments for other things: those must not become orders
# (parked failed_permanent ones included). Injected so a test can substitute its own.
ProductCheck = Callable[[AsyncConnection[Any], Sequence[MercadoPagoPayment]], Awaitable[set[str]]]
# MP statuses worth a look: approvals that may lack their order, refunds that may still grant
# access, rejections an order may still wait on. Pending ones wait for the next run.
_STATES = ("approved", "refunded", "charged_back", "rejected")
# Hand-offs in flight at once from one page.
_HANDOFF_CONCURRENCY = 10


async def sold_by_catalogue(
    conn: AsyncConnection[Any], payments: Sequence[MercadoPagoPayment]
) -> set[str]:
    """The payments the catalogue's matching rule accepts (the purchase workflow applies the
    same rule, `judge`, to each order): the catalogue is read once per page, and each payment is
    judged against the prices valid when it was made."""
    catalogue = await products.list_products(conn)
    sold: set[str] = set()
    for found in payments:
        at = found.date_created or found.date_approved or datetime.now(UTC)
        valid = [
            products.ValidPrices(
                product_id=entry.product.product_id,
                currency=entry.product.currency,
                prices_cents=sorted({p.price_cents for p in entry.prices if p.valid_at(at)}),
            )
            for entry in catalogue
        ]
        payment = Payment(
            state="approved",
            provider_status=found.status,
            amount=found.transaction_amount,
            currency=found.currency_id or "BRL",
            items=mercadopago_items(found),
            created_at=at,
        )
        if judge(payment, valid, at).mismatch is None:
            sold.add(found.id)
    return sold


class ReconcileActivities:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        providers: ProviderClients,
        *,
        sells: ProductCheck = sold_by_catalogue,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._providers = providers
        self._sells = sells

    def all(self) -> list[Callable[..., Any]]:
        return [self.mercadopago_page, self.asaas_page, self.find_orphans, self.prune_signatures]

    @activity.defn(name=MERCADOPAGO_PAGE)
    async def mercadopago_page(self, request: PageRequest) -> PageResult:
        """One page of Mercado Pago's payments; each one the orders do not reflect is handed to
        `purchase:mercadopago:<id>` by signal-with-start, as the gateway does."""
        try:
            page = await self._providers.mercadopago.search_payments(
                begin=request.begin, end=request.end, offset=request.offset, limit=request.limit
            )
        except ProviderError as exc:
            _provider_failure(exc)
        by_id = {p.id: p for p in page.results}
        candidates = [
            (p.id, state) for p in page.results if (state := MP_STATES.get(p.status)) in _STATES
        ]
        async with self._pool.connection() as conn:
            due = await db_reconcile.unreflected_mercadopago(conn, candidates)
            orderless = [by_id[pid] for pid, has_order in due if not has_order]
            ours = await self._sells(conn, orderless) if orderless else set()
        chosen = [pid for pid, has_order in due if has_order or pid in ours]
        config = purchase_config(self._settings)
        client = activity.client()

        async def recover(payment_id: str) -> str:
            await hand_off(
                client,
                provider="mercadopago",
                provider_order_id=payment_id,
                notice=PaymentNotice(action="reconcile"),
                config=config,
                task_queue=self._settings.temporal_task_queue,
            )
            order_id = workflow_id("mercadopago", payment_id)
            await self._recovered(order_id, "mercadopago", by_id[payment_id].status)
            return order_id

        recovered = await _bounded(recover, chosen)
        more = page.paging.offset + len(page.results) < page.paging.total
        return PageResult(read=len(page.results), has_more=more, recovered=recovered)

    @activity.defn(name=ASAAS_PAGE)
    async def asaas_page(self, request: PageRequest) -> PageResult:
        """One page of paid Asaas charges; each paid charge of a current subscription without
        its period is handed to `asaas-payment:<id>`, the workflow the webhook hands it to."""
        filters: dict[str, str] = {"status": request.sweep or "RECEIVED"}
        if request.sweep == "RECEIVED":
            # Asaas dates are Brasília calendar days.
            filters["paymentDate[ge]"] = request.begin.astimezone(BRAZIL).date().isoformat()
            filters["paymentDate[le]"] = request.end.astimezone(BRAZIL).date().isoformat()
        try:
            payments, more = await self._providers.asaas.payments_page(
                offset=request.offset, limit=request.limit, **filters
            )
        except ProviderError as exc:
            _provider_failure(exc)
        paid = [
            (p.id, p.subscription)
            for p in payments
            if p.subscription and p.status in PAID and not p.deleted
        ]
        async with self._pool.connection() as conn:
            due = await db_reconcile.unapplied_asaas(conn, paid)
        status = {p.id: p.status for p in payments}
        client = activity.client()

        async def recover(payment_id: str) -> str:
            await hand_off_payment(
                client,
                payment_id=payment_id,
                event=RECOVERED_EVENT,
                task_queue=self._settings.temporal_task_queue,
            )
            target = asaas_workflow_id(payment_id)
            await self._recovered(target, "asaas", status[payment_id])
            return target

        recovered = await _bounded(recover, due)
        return PageResult(read=len(payments), has_more=more, recovered=recovered)

    @activity.defn(name=FIND_ORPHANS)
    async def find_orphans(self, params: OrphansInput) -> OrphansResult:
        """`entrega reconcile`'s check: logged by kind and id (no e-mails) and counted; never
        fixed here."""
        busy = await running_sagas(activity.client())
        try:
            found = await find_orphans(self._pool, self._providers, grace=params.grace, busy=busy)
        except ProviderError as exc:
            _provider_failure(exc)
        # One line per orphan (kind and id only), then the run's line and the metric the
        # EntregaOrphansFound alert watches.
        for orphan in found:
            log.warning("reconcile found orphan %s %s", orphan.kind, orphan.id)
        events.orphans_found([orphan.kind for orphan in found])
        return OrphansResult(found=[OrphanFinding(kind=o.kind, id=o.id) for o in found])

    @activity.defn(name=PRUNE_SIGNATURES)
    async def prune_signatures(self, params: PruneInput) -> int:
        """Forget Mercado Pago signatures older than `older_than`; answers how many."""
        async with self._pool.connection() as conn:
            pruned = await orders.prune_signatures(conn, params.older_than.total_seconds())
        log.info("pruned %d webhook signatures", pruned)
        return pruned

    async def _recovered(self, target: str, provider: str, status: str) -> None:
        info = activity.info()
        async with self._pool.connection() as conn:
            await insert_log(
                conn,
                workflow_id=target,
                event=RECOVERED_EVENT,
                details={
                    "provider": provider,
                    "provider_status": status,
                    "reconcile_workflow_id": info.workflow_id,
                    "reconcile_run_id": info.workflow_run_id,
                },
            )
        events.recovered_by_reconcile(provider)
        log.warning("reconcile recovered %s (%s %s)", target, provider, status)


async def _bounded(recover: Callable[[str], Awaitable[str]], ids: Sequence[str]) -> list[str]:
    """Run `recover` on each id, a few at a time; the ids in their order."""
    gate = asyncio.Semaphore(_HANDOFF_CONCURRENCY)

    async def one(item: str) -> str:
        async with gate:
            return await recover(item)

    return list(await asyncio.gather(*(one(i) for i in ids)))
