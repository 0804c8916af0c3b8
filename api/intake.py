"""Acknowledging payment notices within the provider's deadline, whatever Temporal's load.

A notice is acknowledged once it is durable. The gateway hands it to the order's workflow
(signal-with-start) and answers 200 when Temporal has it, as long as that takes less than
WEBHOOK_HANDOFF_BUDGET_SECONDS. During a sale's burst Temporal is busy provisioning the orders
before, and the hand-off waits behind them: then the notice goes to the intake inbox (PostgreSQL,
migration 0097) in the transaction that claims its signature, and the answer is 200 at once.
While the inbox holds anything, new notices go straight to it, oldest forwarded first.

Every API process runs a forwarder that hands the inbox's notices to Temporal as fast as it
takes them and deletes each once its hand-off is in Temporal's history; rows of a process that
died are taken by another (or by it, once restarted). A notice may reach its workflow twice (a
hand-off that timed out may have arrived): the workflow is joined by id and a notice only ever
makes it look again, as for a provider's own re-send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from api.deps import TemporalConnection
from contracts.purchases import PaymentNotice, Provider
from db import intake, orders
from settings import Settings
from telemetry import metrics
from workflows.purchase_client import hand_off, purchase_config

log = logging.getLogger(__name__)

# How many inbox notices one forwarder takes at once, and hands to Temporal concurrently.
_TAKE = 50
_IN_FLIGHT = 10
# Rows left by other processes (or by a hand-off that failed) are looked for this often.
_POLL_SECONDS = 1.0
# A notice whose forward failed waits this long, doubling up to the maximum.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 60.0


class Intake:
    """The gateway's hand-off of notices: straight to Temporal, or through the inbox."""

    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool, temporal: TemporalConnection
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._temporal = temporal
        self._budget = settings.webhook_handoff_budget_seconds.total_seconds()
        self._wake = asyncio.Event()
        # Whether notices are waiting in the inbox (this process's view): they go first.
        self._backlog = False
        self._in_flight = asyncio.Semaphore(_IN_FLIGHT)

    async def deliver(
        self,
        claim: orders.Claim,
        client: Client,
        *,
        provider: Provider,
        provider_order_id: str,
        notice: PaymentNotice,
    ) -> None:
        """Make the notice durable: in Temporal within the budget, else in the inbox, in the
        claim's transaction (the claim and the inbox row commit together). Raises what the
        hand-off raised when Temporal refused it (the caller answers 503)."""
        if not self._backlog:
            try:
                await asyncio.wait_for(
                    self._hand_off(client, provider, provider_order_id, notice), self._budget
                )
                return
            except TimeoutError:
                pass  # busy: it may still arrive, and forwarding it again is harmless
        await intake.put(claim.conn, provider, provider_order_id, notice)
        metrics.NOTICES_INBOXED.inc()
        self._backlog = True
        # Woken now, the forwarder would look before the row is visible and then sleep a poll.
        claim.after_commit.append(self._wake.set)

    async def forward(self) -> None:
        """Forward the inbox to Temporal until cancelled (the API's lifespan runs it)."""
        while True:
            # Cleared before looking, not after: a row committed while this look runs (after
            # its query) wakes the wait below at once instead of being forgotten until the poll.
            self._wake.clear()
            try:
                forwarded = await self._forward_some()
            except Exception as exc:  # PostgreSQL or Temporal away: look again shortly
                log.warning("intake inbox: forwarding failed: %s", exc)
                forwarded = 0
            if forwarded:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _POLL_SECONDS)

    async def _forward_some(self) -> int:
        """Hand off the oldest due notices; answers how many were taken."""
        async with self._pool.connection() as conn, conn.transaction():
            due = await intake.take(conn, _TAKE)
            if not due:
                self._backlog = False
                return 0
            self._backlog = True
            client = await self._temporal.get()
            results = await asyncio.gather(
                *(self._forward_one(client, row) for row in due), return_exceptions=True
            )
            await intake.forwarded(
                conn, [row.id for row, failure in zip(due, results, strict=True) if not failure]
            )
            for row, failure in zip(due, results, strict=True):
                if failure:
                    delay = min(_RETRY_FIRST_SECONDS * 2**row.attempts, _RETRY_MAX_SECONDS)
                    await intake.retry_later(conn, row.id, str(failure), delay)
        metrics.NOTICES_FORWARDED.inc(sum(1 for failure in results if not failure))
        return len(due)

    async def _forward_one(self, client: Client, row: intake.InboxNotice) -> None:
        async with self._in_flight:
            await self._hand_off(client, row.provider, row.provider_order_id, row.notice)

    async def _hand_off(
        self, client: Client, provider: Provider, provider_order_id: str, notice: PaymentNotice
    ) -> None:
        await hand_off(
            client,
            provider=provider,
            provider_order_id=provider_order_id,
            notice=notice,
            config=purchase_config(self._settings),
            task_queue=self._settings.temporal_task_queue,
        )
