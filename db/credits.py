"""The credit ledger: spending a credit on a shipment, balances, and grants of purchased credits.

The spend itself is the `spend_credit` SQL function (migrations 0031, 0050, 0095): one statement
that inserts the shipment, locks the profile, picks the credit and inserts its usage row and
idempotency record. Keeping it in the database means the profile lock is held for the time the
server needs to do the work, not for round trips to this process. The API spends through a
`SpendCombiner`: spends of one profile that wait at the same time share one statement and one
commit (`spend_credits`, migration 0096).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from db.pool import in_autocommit


class LedgerError(Exception):
    """A spend or grant that the ledger refused; nothing was written."""


class ProfileNotFound(LedgerError):
    """No profile with that id."""


class NoSubscription(LedgerError):
    """The profile has no subscription yet: its sign-up may still be rolled back."""


class CheckoutInProgress(LedgerError):
    """A checkout of the profile is running: if it is the first, it may roll the sign-up back."""


class InsufficientCredits(LedgerError):
    """Neither monthly nor purchased credits are left."""


class IdempotencyKeyReused(LedgerError):
    """The Idempotency-Key was already used for a different request."""


class InvalidExpiry(ValueError):
    """An expiry that is not a date or a zoned timestamp, or that is not in the future."""

    def __init__(self, reason: Literal["format", "no_zone", "past"]) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """The moment a grant stops being spendable, as the admin API and the CLI both take it.

    `2026-12-31` means valid through that day in UTC, so the grant expires at 2027-01-01T00:00Z.
    A timestamp must carry its zone (`2026-12-31T23:59:59-03:00`, `...Z`): without one it is
    ambiguous (UTC or Brasília?) and is refused. The result must be in the future.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidExpiry("format") from None
        if moment.tzinfo is None:
            raise InvalidExpiry("no_zone") from None
    else:
        moment = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    if moment <= (now or datetime.now(UTC)):
        raise InvalidExpiry("past")
    return moment


class Credit(BaseModel):
    source_type: Literal["monthly", "purchase"]
    purchase_id: uuid.UUID | None


class MonthlyBalance(BaseModel):
    limit: int
    used: int
    remaining: int
    period_start: datetime | None
    period_end: datetime | None


class ExtraBalance(BaseModel):
    remaining: int


class Balance(BaseModel):
    monthly: MonthlyBalance
    extra: ExtraBalance
    total_remaining: int


class Spent(BaseModel):
    """A shipment and the credit it took; `replayed` when the idempotency key answered it before."""

    shipment_id: uuid.UUID
    credit: Credit
    balance: Balance
    replayed: bool


class PurchaseBalance(BaseModel):
    purchase_id: uuid.UUID
    profile_id: uuid.UUID
    credits_amount: int
    expires_at: datetime | None
    created_at: datetime
    used: int
    remaining: int
    spendable: bool


class CreditPurchase(BaseModel):
    purchase_id: uuid.UUID
    profile_id: uuid.UUID
    credits_amount: int
    expires_at: datetime | None
    created_at: datetime


async def profile_id_for_user(
    conn: AsyncConnection[Any], auth_user_id: uuid.UUID
) -> uuid.UUID | None:
    """The profile of a Supabase auth user, if they have one."""
    cur = await conn.execute(
        "SELECT profile_id FROM profiles WHERE auth_user_id = %(auth_user_id)s",
        {"auth_user_id": auth_user_id},
    )
    row = await cur.fetchone()
    return row[0] if row else None


# Prepared on each connection at its first use (prepare=True): the statement is parsed and planned
# once per connection, and every call after that is a Bind/Execute of the one round trip.
_SPEND = """
    SELECT outcome, shipment_id, source_type, purchase_id, balance
    FROM spend_credit(%s, %s, %s, %s, %s, %s, %s, %s)
"""


async def spend_credit(
    conn: AsyncConnection[Any],
    *,
    auth_user_id: uuid.UUID,
    idempotency_key: str,
    request_hash: str,
    recipient_name: str,
    destination_postal_code: str,
    weight_grams: int,
    reference: str | None,
    shipment_id: uuid.UUID | None = None,
) -> Spent:
    """Create a shipment for the user's profile and spend its credit, or raise a LedgerError
    having written nothing.

    It is a single statement. On a connection in autocommit mode it is its own transaction (the
    API runs it through `db.pool.in_autocommit`: the profile's lock is then released by a commit
    on the server, without a round trip to this process while it is held); inside a transaction
    of the caller's, what it inserted becomes durable at the caller's commit and a rollback takes
    the shipment and its credit back together.
    """
    request = SpendRequest(
        auth_user_id=auth_user_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        recipient_name=recipient_name,
        destination_postal_code=destination_postal_code,
        weight_grams=weight_grams,
        reference=reference,
        shipment_id=shipment_id or uuid.uuid4(),
    )
    return _answer(request, await _spend_one(conn, request))


@dataclass(frozen=True)
class SpendRequest:
    """One shipment to create and the credit to spend for it (the arguments of spend_credit)."""

    auth_user_id: uuid.UUID
    idempotency_key: str
    request_hash: str
    recipient_name: str
    destination_postal_code: str
    weight_grams: int
    reference: str | None
    shipment_id: uuid.UUID = field(default_factory=uuid.uuid4)


# What spend_credit answers: outcome, shipment_id, source_type, purchase_id, balance.
_Row = tuple[str, uuid.UUID | None, str | None, uuid.UUID | None, Any]

# Several spends of one profile in one statement (migration 0096), in the order given.
_SPEND_TOGETHER = """
    SELECT outcome, shipment_id, source_type, purchase_id, balance
    FROM spend_credits(%s, %s, %s, %s, %s, %s, %s, %s) ORDER BY n
"""


async def _spend_one(conn: AsyncConnection[Any], r: SpendRequest) -> _Row:
    cur = await conn.cursor(row_factory=tuple_row).execute(
        _SPEND,
        (
            r.auth_user_id,
            r.idempotency_key,
            r.request_hash,
            r.shipment_id,
            r.recipient_name,
            r.destination_postal_code,
            r.weight_grams,
            r.reference,
        ),
        prepare=True,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def _spend_together(conn: AsyncConnection[Any], batch: list[SpendRequest]) -> list[_Row]:
    """Spends of one profile, in one statement: one lock, one commit in autocommit."""
    cur = await conn.cursor(row_factory=tuple_row).execute(
        _SPEND_TOGETHER,
        (
            batch[0].auth_user_id,
            [r.idempotency_key for r in batch],
            [r.request_hash for r in batch],
            [r.shipment_id for r in batch],
            [r.recipient_name for r in batch],
            [r.destination_postal_code for r in batch],
            [r.weight_grams for r in batch],
            [r.reference for r in batch],
        ),
        prepare=True,
    )
    rows = await cur.fetchall()
    assert len(rows) == len(batch)
    return rows


def _answer(request: SpendRequest, row: _Row) -> Spent:
    """spend_credit's answer for `request`: the shipment, or the LedgerError it stands for."""
    outcome, spent_shipment, source_type, purchase_id, balance_json = row
    if outcome == "no_profile":
        raise ProfileNotFound(str(request.auth_user_id))
    if outcome == "insufficient":
        raise InsufficientCredits(str(request.auth_user_id))
    if outcome == "key_reused":
        raise IdempotencyKeyReused(request.idempotency_key)
    assert spent_shipment is not None and source_type is not None
    return Spent(
        shipment_id=spent_shipment,
        credit=Credit(source_type=source_type, purchase_id=purchase_id),
        balance=Balance.model_validate(balance_json),
        replayed=outcome == "replayed",
    )


class SpendCombiner:
    """Serves the spends of one profile that wait at the same time in one transaction.

    A profile's spends are serialized by its lock, held until the commit (migration 0095), so a
    busy profile spends at the pace of one commit after another. Here a spend that finds another
    of its profile in flight waits for it and then goes together with every spend that arrived
    meanwhile (migration 0096: one statement, one lock, one commit for all of them), in arrival
    order. Each spend is the one it would have been alone; a spend with nobody to wait for runs at
    once, as a single `spend_credit`, so spends spread over many profiles cost what they did.
    If a batch fails, each of its spends is tried alone, so one spend's error is never another's.

    One per process (the API's lifespan); spends of other processes are still serialized by the
    profile's lock in PostgreSQL."""

    def __init__(self, pool: AsyncConnectionPool, *, max_batch: int = 100) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._waiting: dict[uuid.UUID, list[tuple[SpendRequest, asyncio.Future[_Row]]]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        # Statements run and spends served, for the tests and the benchmark.
        self.statements = 0
        self.spends = 0

    async def spend(self, request: SpendRequest) -> Spent:
        """As `spend_credit` in autocommit: the shipment, or a LedgerError having written
        nothing. A spend with none of its profile's in flight runs at once, in the caller's
        task; one that has to wait joins the next batch, and its caller going away does not take
        it back (as with any request cut off, its idempotency key tells what happened)."""
        user = request.auth_user_id
        waiting = self._waiting.get(user)
        if waiting is not None:
            future: asyncio.Future[_Row] = asyncio.get_running_loop().create_future()
            # Retrieved even when the caller went away, so no error is left unread.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            waiting.append((request, future))
            # A caller cancelled here cancels only its wait: the spend stays in its batch.
            return _answer(request, await future)
        self._waiting[user] = []
        try:
            row = await in_autocommit(self._pool, lambda conn: _spend_one(conn, request))
        finally:
            self.statements += 1
            if self._waiting[user]:  # they waited on this one: serve them together
                task = asyncio.create_task(self._serve(user))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)
            else:
                del self._waiting[user]
        self.spends += 1
        return _answer(request, row)

    async def _serve(self, auth_user_id: uuid.UUID) -> None:
        """Serve this profile's spends, batch after batch, until none is waiting."""
        try:
            # Each look first lets the spends that are ready to arrive (their callers woken by
            # the batch before) join, so they go together rather than one alone and the rest
            # behind it.
            while True:
                await asyncio.sleep(0)
                waiting = self._waiting[auth_user_id]
                if not waiting:
                    break
                batch = waiting[: self._max_batch]
                del waiting[: self._max_batch]
                try:
                    await self._run(batch)
                except BaseException:  # cancelled (the process is stopping): none hangs
                    for _, future in batch:
                        future.cancel()
                    raise
        finally:
            for _, future in self._waiting.pop(auth_user_id, []):
                future.cancel()

    async def _run(self, batch: list[tuple[SpendRequest, asyncio.Future[_Row]]]) -> None:
        requests = [request for request, _ in batch]
        try:
            if len(requests) == 1:
                rows = [await in_autocommit(self._pool, lambda c: _spend_one(c, requests[0]))]
            else:
                rows = await in_autocommit(self._pool, lambda c: _spend_together(c, requests))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for request, future in batch:  # none of the batch was written: each on its own
                await self._run([(request, future)])
            return
        finally:
            self.statements += 1
        self.spends += len(batch)
        for (_, future), row in zip(batch, rows, strict=True):
            _settle(future, row=row)


def _settle(
    future: asyncio.Future[_Row], *, row: _Row | None = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert row is not None
        future.set_result(row)


async def balance(conn: AsyncConnection[Any], profile_id: uuid.UUID) -> Balance | None:
    """The profile's balance from the `credit_balances` view; None when there is no such profile."""
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM credit_balances WHERE profile_id = %(profile_id)s",
        {"profile_id": profile_id},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Balance(
        monthly=MonthlyBalance(
            limit=row["monthly_limit"],
            used=row["monthly_used"],
            remaining=row["monthly_remaining"],
            period_start=row["period_start"],
            period_end=row["period_end"],
        ),
        extra=ExtraBalance(remaining=row["extra_remaining"]),
        total_remaining=row["total_remaining"],
    )


async def purchases(conn: AsyncConnection[Any], profile_id: uuid.UUID) -> list[PurchaseBalance]:
    """Every purchase of the profile with what is left of it, in spending order."""
    cur = await conn.cursor(row_factory=class_row(PurchaseBalance)).execute(
        """
        SELECT purchase_id, profile_id, credits_amount, expires_at, created_at, used, remaining,
               spendable
        FROM credit_purchase_balances
        WHERE profile_id = %(profile_id)s
        ORDER BY expires_at NULLS LAST, created_at, purchase_id
        """,
        {"profile_id": profile_id},
    )
    return await cur.fetchall()


async def grant_credits(
    conn: AsyncConnection[Any],
    *,
    profile_id: uuid.UUID,
    credits_amount: int,
    expires_at: datetime | None = None,
) -> CreditPurchase:
    """Record a purchase of `credits_amount` credits (an operator's grant or a paid pack).

    Only for a profile with a subscription and no checkout running. A first checkout that fails
    deletes the profile it signed up, and the ledger never deletes a grant: granting before the
    sign-up is settled would either block that rollback or lose the grant with the profile. Once
    a subscription is saved and no checkout runs, no later checkout can delete the profile.
    """
    cur = await conn.cursor(row_factory=dict_row).execute(
        """
        WITH target AS (
            SELECT p.profile_id,
                   p.subscription_id IS NOT NULL AS subscribed,
                   EXISTS (SELECT 1 FROM checkout_attempts a
                            WHERE a.profile_id = p.profile_id AND a.outcome IS NULL)
                       AS checking_out
              FROM profiles p
             WHERE p.profile_id = %(profile_id)s
               FOR KEY SHARE  -- the profile cannot be deleted under the grant
        ), granted AS (
            INSERT INTO credit_purchases (profile_id, credits_amount, expires_at)
            SELECT t.profile_id, %(credits_amount)s, %(expires_at)s
              FROM target t
             WHERE t.subscribed AND NOT t.checking_out
            RETURNING purchase_id, profile_id, credits_amount, expires_at, created_at
        )
        SELECT t.subscribed, t.checking_out, g.*
          FROM (SELECT 1) one
          LEFT JOIN target t ON true
          LEFT JOIN granted g ON true
        """,
        {"profile_id": profile_id, "credits_amount": credits_amount, "expires_at": expires_at},
    )
    row = await cur.fetchone()
    assert row is not None
    if row["subscribed"] is None:
        raise ProfileNotFound(str(profile_id))
    if not row["subscribed"]:
        raise NoSubscription(str(profile_id))
    if row["checking_out"]:
        raise CheckoutInProgress(str(profile_id))
    return CreditPurchase.model_validate({k: row[k] for k in CreditPurchase.model_fields})


def grant_fingerprint(
    *, profile_id: uuid.UUID, credits_amount: int, expires_at: datetime | None
) -> str:
    """Hash of a grant as understood (expiry as an instant): equal grants, equal hashes, whether
    sent to the API or given to `entrega credits grant`."""
    understood = {
        "profile_id": str(profile_id),
        "credits_amount": credits_amount,
        "expires_at": expires_at.astimezone(UTC).isoformat() if expires_at else None,
    }
    return hashlib.sha256(json.dumps(understood, sort_keys=True).encode()).hexdigest()


async def grant_credits_once(
    conn: AsyncConnection[Any],
    *,
    idempotency_key: str,
    profile_id: uuid.UUID,
    credits_amount: int,
    expires_at: datetime | None = None,
) -> tuple[CreditPurchase, bool]:
    """`grant_credits` at most once per `idempotency_key`, with whether this call granted: a
    replay answers the first grant; the key with another grant raises IdempotencyKeyReused.
    Run inside a transaction: a concurrent request with the same key waits (transaction-scoped
    advisory lock on the key) until the first commits or rolls back, and a refused grant (no
    profile, no subscription) leaves the key unused."""
    request_hash = grant_fingerprint(
        profile_id=profile_id, credits_amount=credits_amount, expires_at=expires_at
    )
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 55))", {"key": idempotency_key}
    )
    cur = await conn.cursor(row_factory=dict_row).execute(
        """
        SELECT r.request_hash, p.purchase_id, p.profile_id, p.credits_amount, p.expires_at,
               p.created_at
          FROM credit_grant_requests r
          JOIN credit_purchases p USING (purchase_id, profile_id)
         WHERE r.idempotency_key = %(key)s
        """,
        {"key": idempotency_key},
    )
    row = await cur.fetchone()
    if row is None:
        purchase = await grant_credits(
            conn, profile_id=profile_id, credits_amount=credits_amount, expires_at=expires_at
        )
        await conn.execute(
            """
            INSERT INTO credit_grant_requests
                   (idempotency_key, request_hash, purchase_id, profile_id)
            VALUES (%(key)s, %(hash)s, %(purchase_id)s, %(profile_id)s)
            """,
            {
                "key": idempotency_key,
                "hash": request_hash,
                "purchase_id": purchase.purchase_id,
                "profile_id": purchase.profile_id,
            },
        )
        return purchase, True
    if row["request_hash"] != request_hash:
        raise IdempotencyKeyReused(idempotency_key)
    return CreditPurchase.model_validate({k: row[k] for k in CreditPurchase.model_fields}), False
