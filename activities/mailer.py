"""E-mails up to 100 per Resend request, each sent at most once (docs/providers.md, Resend).

Every e-mail activity of a worker process hands its message to the process's one `Mailer`.
The mailer takes a request slot of Resend's limit from PostgreSQL (`provider_request_slots`:
one clock for every worker process), and meanwhile the messages of other activities pile up; at
the slot's start it claims up to 100 of them for a new batch (`email_claims`, `email_batches`,
one transaction with the exact bodies) and posts them in one request under the batch's own
Idempotency-Key.

- Accepted: the ids are recorded (one `sent` email_logs row per e-mail) and each activity gets
  its own id; an e-mail Resend refused alone (permissive validation) is let go, and its
  activity fails for good.
- Not sent for sure (429, 401/403, a whole-batch 422): the claims are let go and each activity
  fails (a 429 as `provider_rate_limited`, after Retry-After, which also holds every worker's
  next slot back); its retry makes a new batch.
- Unknown (timeout, 5xx, connection lost, an answer that cannot be read): the claims stay. The
  retry of any of its e-mails re-sends that very batch, same bodies and key, which Resend answers
  with the first ids without sending again.

An e-mail claimed by another batch (a twin attempt, here or in another worker) is never put in a
second one: its activity waits for, or re-sends, the batch that holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import MultiFernet
from psycopg_pool import AsyncConnectionPool

from db import email_batches
from db.email_batches import Batch, BatchItem
from providers.errors import PermanentError, ProviderError, RateLimitedError, TransientError
from providers.resend import MAX_BATCH, BatchAnswer, ResendClient

SERVICE = "resend"
# Slots are spaced a quarter wider than the limit, so that a busy worker's late start of one
# request (claiming its batch, the event loop's other work) does not bring it within the
# provider's window of the next one: a 429 costs its whole batch a retry.
SLOT_MARGIN = 1.25


@dataclass
class _Waiting:
    item: BatchItem
    futures: list[asyncio.Future[str]] = field(default_factory=list)

    def settle(self, result: str | BaseException) -> None:
        for future in self.futures:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    @property
    def abandoned(self) -> bool:
        return all(future.done() for future in self.futures)


def _refused(message: str) -> PermanentError:
    return PermanentError(SERVICE, message, status=422, code="validation_error")


class Mailer:
    """One per worker process: batches the e-mails of its activities (see the module)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        resend: ResendClient,
        *,
        requests_per_second: float,
        sealer: MultiFernet,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._pool = pool
        self._resend = resend
        self._sealer = sealer
        self._spacing = SLOT_MARGIN / requests_per_second
        self._max_batch = max_batch
        self._pending: dict[str, _Waiting] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resending: dict[str, asyncio.Task[BatchAnswer]] = {}

    async def deliver(self, item: BatchItem) -> str:
        """The e-mail's Resend id once Resend accepted it, in this or an earlier batch; raises
        the ProviderError that stopped it."""
        # No look-up first: claiming for the next batch finds an earlier claim just as well (and
        # then waits for, or re-sends, that batch), one statement per batch, not per e-mail.
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiting = self._pending.setdefault(item.idempotency_key, _Waiting(item))
        waiting.futures.append(future)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    # --- new batches --------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Until nothing waits: claim what is waiting for a batch, then take the next request
        slot and post it at the slot's start (while it waits, the next batch fills up). The slot
        is taken last, so that nothing slow (a connection from a busy pool, the claim) stands
        between its start and the request."""
        try:
            while self._pending:
                taken = self._take(self._max_batch)
                if not taken:
                    continue
                batch = await self._claim(taken)
                if batch is None:
                    continue
                try:
                    wait = await self._reserve()
                except Exception as exc:
                    await self._let_go(batch, taken, exc)
                    continue
                if wait:
                    await asyncio.sleep(wait)
                self._spawn(self._send_new(batch, taken))
        finally:
            self._flusher = None

    def _take(self, count: int) -> list[_Waiting]:
        taken: list[_Waiting] = []
        for key in list(self._pending):
            if len(taken) == count:
                break
            waiting = self._pending.pop(key)
            if not waiting.abandoned:
                taken.append(waiting)
        return taken

    async def _claim(self, taken: list[_Waiting]) -> Batch | None:
        """A new batch of the e-mails no other batch has claimed, recorded; the others wait for
        the batch that holds them."""
        batch_key = f"batch:{uuid.uuid4()}"
        try:
            async with self._pool.connection() as conn, conn.transaction():
                claimed = await email_batches.claim(
                    conn, batch_key, [w.item for w in taken], self._sealer
                )
        except Exception as exc:
            for waiting in taken:
                waiting.settle(exc)
            return None
        for waiting in taken:
            if waiting.item.idempotency_key not in claimed:
                # Claimed by another batch (an earlier attempt's, or a twin's): its only one.
                self._spawn(self._settle(waiting, self._from_key(waiting.item.idempotency_key)))
        mine = [w.item for w in taken if w.item.idempotency_key in claimed]
        taken[:] = [w for w in taken if w.item.idempotency_key in claimed]
        return Batch(batch_key=batch_key, items=mine, message_ids=None) if mine else None

    async def _let_go(self, batch: Batch, taken: list[_Waiting], exc: Exception) -> None:
        """Never sent: free its claims (best effort; a claim left behind only makes the retry
        re-send this batch, which is its first send) and tell its callers."""
        with contextlib.suppress(Exception):
            async with self._pool.connection() as conn:
                await email_batches.release(conn, batch.batch_key)
        for waiting in taken:
            waiting.settle(exc)

    async def _send_new(self, batch: Batch, taken: list[_Waiting]) -> None:
        try:
            answer = await self._post(batch, fresh=True)
        except BaseException as exc:
            for waiting in taken:
                waiting.settle(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for index, waiting in enumerate(taken):
            waiting.settle(_result(answer, index))

    # --- e-mails already claimed by a batch ---------------------------------------------------

    async def _from_key(self, idempotency_key: str) -> str:
        async with self._pool.connection() as conn:
            batch = await email_batches.claimed_batch(conn, idempotency_key, self._sealer)
        if batch is None:
            raise TransientError(SERVICE, "the e-mail's batch let it go: try again")
        return await self._from_batch(batch, idempotency_key)

    async def _from_batch(self, batch: Batch, idempotency_key: str) -> str:
        """The id from the batch's recorded answer, else from re-sending it (once per process
        at a time; a twin elsewhere hears `concurrent_idempotent_requests` and retries)."""
        index = batch.position(idempotency_key)
        if batch.message_ids is None:
            task = self._resending.get(batch.batch_key)
            if task is None:
                task = asyncio.create_task(self._resend_batch(batch))
                self._resending[batch.batch_key] = task
                task.add_done_callback(lambda _: self._resending.pop(batch.batch_key, None))
            answer = await asyncio.shield(task)
            result = _result(answer, index)
            if isinstance(result, BaseException):
                raise result
            return result
        message_id = batch.message_ids[index]
        if message_id is None:
            raise _refused("Resend refused this e-mail")
        return message_id

    async def _resend_batch(self, batch: Batch) -> BatchAnswer:
        wait = await self._reserve()
        if wait:
            await asyncio.sleep(wait)
        return await self._post(batch, fresh=False)

    # --- one request --------------------------------------------------------------------------

    async def _post(self, batch: Batch, *, fresh: bool) -> BatchAnswer:
        """Post the batch and record the answer. `fresh`: never posted before, so an answer that
        says nothing was sent lets its claims go."""
        try:
            answer = await self._resend.send_batch(
                [item.payload for item in batch.items], batch.batch_key
            )
        except ProviderError as exc:
            if isinstance(exc, RateLimitedError) and exc.retry_after:
                async with self._pool.connection() as conn:
                    await email_batches.hold_back(conn, SERVICE, exc.retry_after)
            if fresh and _nothing_sent(exc):
                async with self._pool.connection() as conn:
                    await email_batches.release(conn, batch.batch_key)
            raise
        async with self._pool.connection() as conn, conn.transaction():
            await email_batches.record_answer(conn, batch, answer.ids, answer.errors)
        return answer

    async def _reserve(self) -> float:
        async with self._pool.connection() as conn:
            return await email_batches.reserve_slot(conn, SERVICE, self._spacing)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, waiting: _Waiting, work: Coroutine[Any, Any, str]) -> None:
        try:
            waiting.settle(await work)
        except Exception as exc:
            waiting.settle(exc)


def _nothing_sent(exc: ProviderError) -> bool:
    """A refusal of the whole request: 429 (and the quotas), 401/403, a 4xx validation. Not a
    timeout, a 5xx, nor an answer that could not be read (those may follow a send)."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status != 409


def _result(answer: BatchAnswer, index: int) -> str | BaseException:
    message_id = answer.ids[index]
    if message_id is not None:
        return message_id
    return _refused(answer.errors.get(index, "Resend refused this e-mail"))


_MAILERS: weakref.WeakKeyDictionary[ResendClient, Mailer] = weakref.WeakKeyDictionary()


def mailer_for(
    pool: AsyncConnectionPool,
    resend: ResendClient,
    *,
    requests_per_second: float,
    sealer: MultiFernet,
) -> Mailer:
    """The process's mailer for this Resend client: every activity object built on the same
    clients shares it, so their e-mails share batches."""
    mailer = _MAILERS.get(resend)
    if mailer is None:
        mailer = _MAILERS[resend] = Mailer(
            pool, resend, requests_per_second=requests_per_second, sealer=sealer
        )
    return mailer
