"""orders and email_logs: what the purchase workflow did, for activities, operators and the API.

Functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from contracts.purchases import CATALOGUE_MISMATCH, OrderState, StageChange

log = logging.getLogger(__name__)

REFUNDED_STATES = ("refunded", "charged_back")
# Stages in which an order (not refunded) grants its customer's Lovable user access, or soon will;
# a refund must still reach them. failed_permanent is included: a parked order learns of the
# refund and stops for good; but not one parked for a catalogue mismatch (see `record_refund`):
# that payment bought nothing we sell.
ACCESS_STAGES = (
    "queued",
    "creating_user",
    "failed_at_user",
    "sending_credentials",
    "failed_at_email",
    "completed",
    "failed_permanent",
)


class Order(BaseModel):
    order_id: str
    provider: str
    provider_order_id: str
    stage: str
    customer_email: str | None
    customer_name: str | None
    amount_cents: int | None
    currency: str
    payment_method: str | None
    lovable_user_id: str | None
    user_existed: bool | None
    encrypted_password: bytes | None
    attempts: int
    last_error: str | None
    next_retry_at: datetime | None
    completed_at: datetime | None
    revoked_at: datetime | None
    refunded_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class IntegrationLog(BaseModel):
    id: int
    event: str
    stage: str | None
    attempt: int | None
    error: str | None
    details: dict[str, Any]
    created_at: datetime


class EmailLog(BaseModel):
    id: int
    email_type: str
    recipient: str
    idempotency_key: str
    provider_message_id: str | None
    status: str
    error: str | None
    created_at: datetime


def _cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


async def apply_stage(conn: AsyncConnection[Any], change: StageChange) -> OrderState:
    """Record a transition (creating the order on its first one) and log it.

    A finished order is never moved back by a late duplicate run: `completed` only gives way to
    `revoked` (or `failed_permanent` when the revocation itself is refused), and `revoked` is
    final. A refund is final too: a change carrying a refunded or charged-back payment sets
    `refunded_at`, and from then on the order only enters `cancelled`, `revoked` or
    `failed_permanent` (a refused revocation), whichever run asks. `failed_permanent` replaces
    `completed` or a refunded order's stage only when the change itself carries the refund: a
    later run's catalogue mismatch or unreadable payment does not park a finished order.
    `cancelled` and `revoked` erase the generated password: no credentials e-mail follows them.
    The answer is the order's state after the call.
    """
    payment = change.payment
    # One statement, one round trip: the upsert, its journal line and the order's state after it
    # (a change refused, which only late duplicates meet, reads the state with a second one).
    row = await (
        await conn.execute(
            """
            WITH changed AS (
                INSERT INTO orders AS o (order_id, provider, provider_order_id, stage,
                    customer_email, customer_name, amount_cents, currency, payment_method,
                    attempts, last_error, next_retry_at, completed_at, revoked_at, refunded_at)
                VALUES (%(order_id)s, %(provider)s, %(provider_order_id)s, %(stage)s, %(email)s,
                    %(name)s, %(amount_cents)s, %(currency)s, %(payment_method)s, %(attempts)s,
                    %(last_error)s, %(next_retry_at)s,
                    CASE WHEN %(stage)s = 'completed' THEN now() END,
                    CASE WHEN %(stage)s = 'revoked' THEN now() END,
                    CASE WHEN %(refunded)s THEN now() END)
                ON CONFLICT (order_id) DO UPDATE SET
                    stage = EXCLUDED.stage,
                    customer_email = COALESCE(EXCLUDED.customer_email, o.customer_email),
                    customer_name = COALESCE(EXCLUDED.customer_name, o.customer_name),
                    amount_cents = COALESCE(EXCLUDED.amount_cents, o.amount_cents),
                    payment_method = COALESCE(EXCLUDED.payment_method, o.payment_method),
                    attempts = EXCLUDED.attempts,
                    last_error = EXCLUDED.last_error,
                    next_retry_at = EXCLUDED.next_retry_at,
                    completed_at = COALESCE(o.completed_at, EXCLUDED.completed_at),
                    revoked_at = COALESCE(o.revoked_at, EXCLUDED.revoked_at),
                    refunded_at = COALESCE(o.refunded_at, EXCLUDED.refunded_at),
                    encrypted_password = CASE WHEN EXCLUDED.stage IN ('cancelled', 'revoked')
                        THEN NULL ELSE o.encrypted_password END,
                    updated_at = now()
                WHERE (o.stage NOT IN ('completed', 'revoked')
                       OR (o.stage = 'completed' AND (EXCLUDED.stage = 'revoked'
                           OR (EXCLUDED.stage = 'failed_permanent'
                               AND EXCLUDED.refunded_at IS NOT NULL))))
                  AND (COALESCE(o.refunded_at, EXCLUDED.refunded_at) IS NULL
                       OR EXCLUDED.stage IN ('cancelled', 'revoked')
                       OR (EXCLUDED.stage = 'failed_permanent'
                           AND EXCLUDED.refunded_at IS NOT NULL))
                RETURNING stage, lovable_user_id, refunded_at
            ), logged AS (
                INSERT INTO integration_logs (workflow_id, event, stage, attempt, error, details)
                SELECT %(order_id)s,
                    CASE WHEN EXISTS (SELECT 1 FROM changed)
                        THEN 'stage_changed' ELSE 'stage_kept' END,
                    %(stage)s, %(attempts)s, %(last_error)s, %(details)s
            )
            SELECT stage, lovable_user_id,
                   EXISTS (SELECT 1 FROM email_logs e WHERE e.workflow_id = %(order_id)s
                           AND e.email_type = 'credentials' AND e.status = 'sent'),
                   refunded_at IS NOT NULL
            FROM changed
            """,
            {
                "order_id": change.order_id,
                "provider": change.provider,
                "provider_order_id": change.provider_order_id,
                "stage": change.stage,
                "email": payment.email if payment else None,
                "name": payment.name if payment else None,
                "amount_cents": _cents(payment.amount) if payment else None,
                "currency": payment.currency if payment else "BRL",
                "payment_method": payment.payment_method if payment else None,
                "attempts": change.attempts,
                "last_error": change.last_error,
                "next_retry_at": change.next_retry_at,
                "refunded": payment is not None and payment.state in REFUNDED_STATES,
                "details": Jsonb(
                    {"next_retry_at": change.next_retry_at.isoformat()}
                    if change.next_retry_at
                    else {}
                ),
            },
        )
    ).fetchone()
    if row is None:
        row = await (
            await conn.execute(
                """
                SELECT stage, lovable_user_id,
                       EXISTS (SELECT 1 FROM email_logs e WHERE e.workflow_id = o.order_id
                               AND e.email_type = 'credentials' AND e.status = 'sent'),
                       refunded_at IS NOT NULL
                FROM orders o WHERE order_id = %(order_id)s
                """,
                {"order_id": change.order_id},
            )
        ).fetchone()
    assert row is not None
    return OrderState(
        stage=row[0], lovable_user_id=row[1], credentials_sent=row[2], refunded=row[3]
    )


async def get_order(conn: AsyncConnection[Any], key: str) -> Order | None:
    """An order by its id (the workflow id) or by the provider's order id."""
    cur = conn.cursor(row_factory=class_row(Order))
    await cur.execute(
        """
        SELECT * FROM orders WHERE order_id = %(key)s OR provider_order_id = %(key)s
        ORDER BY (order_id = %(key)s) DESC, created_at LIMIT 1
        """,
        {"key": key},
    )
    return await cur.fetchone()


async def list_orders(
    conn: AsyncConnection[Any], *, stage: str | None = None, limit: int = 100
) -> list[Order]:
    """The most recently changed orders first, optionally in one stage."""
    cur = conn.cursor(row_factory=class_row(Order))
    await cur.execute(
        """
        SELECT * FROM orders WHERE %(stage)s::text IS NULL OR stage = %(stage)s
        ORDER BY updated_at DESC LIMIT %(limit)s
        """,
        {"stage": stage, "limit": limit},
    )
    return await cur.fetchall()


async def store_password_once(conn: AsyncConnection[Any], order_id: str, token: bytes) -> bytes:
    """Keep the first encrypted password ever stored for the order, so retries reuse it."""
    await conn.execute(
        """
        UPDATE orders SET encrypted_password = %(token)s, updated_at = now()
        WHERE order_id = %(order_id)s AND encrypted_password IS NULL
        """,
        {"order_id": order_id, "token": token},
    )
    row = await (
        await conn.execute(
            "SELECT encrypted_password FROM orders WHERE order_id = %(order_id)s",
            {"order_id": order_id},
        )
    ).fetchone()
    assert row is not None and row[0] is not None
    return bytes(row[0])


async def store_user(
    conn: AsyncConnection[Any], order_id: str, user_id: str, *, existed: bool
) -> None:
    await conn.execute(
        """
        UPDATE orders SET lovable_user_id = %(user_id)s, user_existed = %(existed)s,
            updated_at = now()
        WHERE order_id = %(order_id)s
        """,
        {"order_id": order_id, "user_id": user_id, "existed": existed},
    )


async def lock_customer(conn: AsyncConnection[Any], email: str) -> None:
    """Serialize, until the transaction ends, every decision about the Lovable user of `email`
    (Lovable keeps one user per e-mail): creating it for an order, and deactivating it."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))",
        {"key": f"lovable-user:{email.strip().lower()}"},
    )


async def user_creation_in_doubt(conn: AsyncConnection[Any], order_id: str) -> bool:
    """Whether a Lovable user creation for the order may have happened without the order
    knowing: a password was stored for it, and some attempt got no answer from Lovable (it timed
    out, could not tell whether its request arrived, or died with its worker). An attempt that
    Lovable answered with an error made no user."""
    row = await (
        await conn.execute(
            """
            SELECT o.encrypted_password IS NOT NULL
               AND (SELECT count(*) FROM integration_logs l
                    WHERE l.workflow_id = o.order_id AND l.stage = 'creating_user'
                      AND l.event = 'attempt')
                 > (SELECT count(*) FROM integration_logs l
                    WHERE l.workflow_id = o.order_id AND l.stage = 'creating_user'
                      AND l.event = 'attempt_failed' AND l.details->>'answered' = 'true')
            FROM orders o WHERE o.order_id = %(order_id)s
            """,
            {"order_id": order_id},
        )
    ).fetchone()
    return bool(row and row[0])


class RefundDecision(BaseModel):
    """What a refund does to the order's Lovable user."""

    lovable_user_id: str | None
    # Other live orders that grant the same user access: the user stays active for them.
    kept_for: list[str]

    @property
    def deactivate(self) -> bool:
        return self.lovable_user_id is not None and not self.kept_for


async def record_refund(conn: AsyncConnection[Any], order_id: str) -> RefundDecision | None:
    """Mark the order refunded for good and decide whether its Lovable user is deactivated.

    Call inside a transaction, and keep it open until the deactivation is done: the customer's
    lock (`lock_customer`) makes two refunds of orders sharing a user decide one after the other,
    so the last one sees the first as refunded and deactivates. None: no such order.
    """
    row = await (
        await conn.execute(
            "SELECT customer_email FROM orders WHERE order_id = %(order_id)s",
            {"order_id": order_id},
        )
    ).fetchone()
    if row is None:
        return None
    if row[0]:
        await lock_customer(conn, row[0])
    marked = await (
        await conn.execute(
            """
            UPDATE orders SET refunded_at = COALESCE(refunded_at, now()),
                encrypted_password = NULL, updated_at = now()
            WHERE order_id = %(order_id)s
            RETURNING lovable_user_id, customer_email
            """,
            {"order_id": order_id},
        )
    ).fetchone()
    assert marked is not None
    user_id, email = marked
    if user_id is None:
        return RefundDecision(lovable_user_id=None, kept_for=[])
    others = await (
        await conn.execute(
            """
            SELECT order_id FROM orders
            WHERE order_id <> %(order_id)s AND refunded_at IS NULL
              AND stage = ANY(%(live)s)
              AND NOT (stage = 'failed_permanent'
                       AND starts_with(coalesce(last_error, ''), %(mismatch)s))
              AND (lovable_user_id = %(user_id)s
                   OR lower(customer_email) = lower(%(email)s::text))
            ORDER BY order_id
            """,
            {
                "order_id": order_id,
                "user_id": user_id,
                "email": email,
                "live": list(ACCESS_STAGES),
                "mismatch": CATALOGUE_MISMATCH,
            },
        )
    ).fetchall()
    return RefundDecision(lovable_user_id=user_id, kept_for=[r[0] for r in others])


async def erase_password(conn: AsyncConnection[Any], order_id: str) -> None:
    await conn.execute(
        "UPDATE orders SET encrypted_password = NULL, updated_at = now() "
        "WHERE order_id = %(order_id)s",
        {"order_id": order_id},
    )


async def email_sent(conn: AsyncConnection[Any], idempotency_key: str) -> bool:
    row = await (
        await conn.execute(
            "SELECT 1 FROM email_logs WHERE idempotency_key = %(key)s AND status = 'sent'",
            {"key": idempotency_key},
        )
    ).fetchone()
    return row is not None


async def log_email(
    conn: AsyncConnection[Any],
    *,
    workflow_id: str,
    email_type: str,
    recipient: str,
    idempotency_key: str,
    status: str,
    provider_message_id: str | None = None,
    error: str | None = None,
) -> None:
    """One line per attempt that failed, and exactly one per e-mail accepted."""
    await conn.execute(
        """
        INSERT INTO email_logs (workflow_id, email_type, recipient, idempotency_key,
            provider_message_id, status, error)
        VALUES (%(workflow_id)s, %(email_type)s, %(recipient)s, %(key)s, %(message_id)s,
            %(status)s, %(error)s)
        ON CONFLICT (idempotency_key) WHERE status = 'sent' DO NOTHING
        """,
        {
            "workflow_id": workflow_id,
            "email_type": email_type,
            "recipient": recipient,
            "key": idempotency_key,
            "message_id": provider_message_id,
            "status": status,
            "error": error,
        },
    )


async def order_logs(conn: AsyncConnection[Any], order_id: str) -> list[IntegrationLog]:
    cur = conn.cursor(row_factory=class_row(IntegrationLog))
    await cur.execute(
        "SELECT id, event, stage, attempt, error, details, created_at FROM integration_logs "
        "WHERE workflow_id = %(order_id)s ORDER BY id",
        {"order_id": order_id},
    )
    return await cur.fetchall()


async def order_emails(conn: AsyncConnection[Any], order_id: str) -> list[EmailLog]:
    cur = conn.cursor(row_factory=class_row(EmailLog))
    await cur.execute(
        "SELECT id, email_type, recipient, idempotency_key, provider_message_id, status, error, "
        "created_at FROM email_logs WHERE workflow_id = %(order_id)s ORDER BY id",
        {"order_id": order_id},
    )
    return await cur.fetchall()


async def claim_signature(conn: AsyncConnection[Any], signature: str) -> bool:
    """True the first time a webhook signature is seen; False for a replay."""
    row = await (
        await conn.execute(
            "INSERT INTO webhook_signatures (signature) VALUES (%(signature)s) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            {"signature": signature},
        )
    ).fetchone()
    return row is not None


async def prune_signatures(conn: AsyncConnection[Any], older_than_seconds: float) -> int:
    """Forget signatures older than that; answers how many."""
    cur = await conn.execute(
        "DELETE FROM webhook_signatures WHERE seen_at < now() - make_interval(secs => %(s)s)",
        {"s": older_than_seconds},
    )
    return cur.rowcount


async def claim_appmax_event(conn: AsyncConnection[Any], event: str, order_id: str) -> bool:
    """True the first time this AppMax (event, order id) pair is seen; False for a re-send."""
    row = await (
        await conn.execute(
            "INSERT INTO appmax_events (event, order_id) VALUES (%(event)s, %(order_id)s) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            {"event": event, "order_id": order_id},
        )
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Claim:
    """A webhook record claimed in an open transaction: `fresh` the first time it is seen;
    `conn` is the transaction's, for what must commit with the claim (the intake inbox);
    `after_commit` is called once that transaction has committed (what others may now see)."""

    fresh: bool
    conn: AsyncConnection[Any]
    after_commit: list[Callable[[], None]] = field(default_factory=list, compare=False)


@asynccontextmanager
async def _once(
    pool: AsyncConnectionPool[Any], claim: Callable[[AsyncConnection[Any]], Awaitable[bool]]
) -> AsyncIterator[Claim]:
    """Claim a webhook record (fresh: first time seen) in a transaction that commits only when
    the block succeeds: a block that fails, or a request or process that dies during it, rolls
    the claim back, so the provider's re-send is accepted (the same record arriving meanwhile
    waits for the outcome)."""
    async with pool.connection() as conn:
        async with conn.transaction():
            held = Claim(await claim(conn), conn)
            yield held
        for committed in held.after_commit:
            try:
                committed()
            except Exception:  # the claim is committed: its answer must not become an error
                log.exception("an after-commit callback of a webhook claim failed")


def signature_once(
    pool: AsyncConnectionPool[Any], signature: str
) -> AbstractAsyncContextManager[Claim]:
    """A Mercado Pago signature is good once: the block learns whether this is its first use."""
    return _once(pool, lambda conn: claim_signature(conn, signature))


def appmax_event_once(
    pool: AsyncConnectionPool[Any], event: str, order_id: str
) -> AbstractAsyncContextManager[Claim]:
    """An AppMax (event, order id) is delivered once: the block learns whether this is the first."""
    return _once(pool, lambda conn: claim_appmax_event(conn, event, order_id))
