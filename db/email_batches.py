"""email_batches, email_claims and provider_request_slots: Resend batches recorded before they
are sent, which batch each e-mail is claimed by, and the request rate shared by every worker.

Functions take a connection; the caller owns the transaction. A body holds what the e-mail
says (a credentials e-mail: the generated password), so it is stored sealed with the credentials
key, as `orders.encrypted_password` is, never in plaintext, and only until Resend's answer is
recorded.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import MultiFernet
from psycopg import AsyncConnection
from psycopg.types.json import Json
from pydantic import BaseModel


class BatchItem(BaseModel):
    """One e-mail of a batch: what email_logs records about it, and its exact request body."""

    idempotency_key: str
    workflow_id: str
    email_type: str
    recipient: str
    payload: dict[str, Any]


class Batch(BaseModel):
    batch_key: str
    items: list[BatchItem]
    message_ids: list[str | None] | None

    def position(self, idempotency_key: str) -> int:
        return [item.idempotency_key for item in self.items].index(idempotency_key)


def _sealed(item: BatchItem, sealer: MultiFernet) -> dict[str, Any]:
    row = item.model_dump(exclude={"payload"})
    row["sealed_payload"] = sealer.encrypt(json.dumps(item.payload).encode()).decode()
    return row


def _opened(row: dict[str, Any], sealer: MultiFernet, *, answered: bool) -> BatchItem:
    # json.loads keeps the keys in the order they were written: the same body, the same bytes.
    sealed = row.pop("sealed_payload", None)
    if sealed is None:
        # An answered batch has no bodies left (`record_answer`): only its ids are read again.
        # One still to be (re-)posted must have them all.
        if not answered:
            raise ValueError(f"an unanswered batch lost the body of {row.get('idempotency_key')}")
        return BatchItem(**row, payload={})
    return BatchItem(**row, payload=json.loads(sealer.decrypt(sealed.encode())))


async def claim(
    conn: AsyncConnection[Any], batch_key: str, items: list[BatchItem], sealer: MultiFernet
) -> list[str]:
    """Record the batch with the items no other batch has claimed (their bodies sealed); answer
    their keys, in order. Call inside a transaction: the claims and the batch row commit
    together."""
    cur = await conn.execute(
        "INSERT INTO email_claims (idempotency_key, batch_key) "
        "SELECT key, %(batch)s FROM unnest(%(keys)s::text[]) AS key "
        "ON CONFLICT DO NOTHING RETURNING idempotency_key",
        {"batch": batch_key, "keys": [item.idempotency_key for item in items]},
    )
    claimed = {row[0] for row in await cur.fetchall()}
    mine = [item for item in items if item.idempotency_key in claimed]
    if mine:
        await conn.execute(
            "INSERT INTO email_batches (batch_key, items) VALUES (%(batch)s, %(items)s)",
            {"batch": batch_key, "items": Json([_sealed(item, sealer) for item in mine])},
        )
    return [item.idempotency_key for item in mine]


async def claimed_batch(
    conn: AsyncConnection[Any], idempotency_key: str, sealer: MultiFernet
) -> Batch | None:
    """The batch an e-mail is claimed by, bodies opened, with Resend's answer if it was heard."""
    cur = await conn.execute(
        "SELECT b.batch_key, b.items, b.message_ids FROM email_claims c "
        "JOIN email_batches b USING (batch_key) WHERE c.idempotency_key = %(key)s",
        {"key": idempotency_key},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    items = [_opened(item, sealer, answered=row[2] is not None) for item in row[1]]
    return Batch(batch_key=row[0], items=items, message_ids=row[2])


async def record_answer(
    conn: AsyncConnection[Any], batch: Batch, ids: list[str | None], errors: dict[int, str]
) -> None:
    """Resend's answer: the batch's ids, one `sent` email_logs row per accepted e-mail (never a
    second), the password of each accepted credentials e-mail erased, and the claims of the
    refused ones let go (a `failed` row each).

    The batch's bodies are erased with it: an answered batch is never posted again (a retry of
    one of its e-mails reads the recorded id), and a credentials e-mail's body holds the
    password that `orders.encrypted_password` gives up in this same transaction."""
    await conn.execute(
        "UPDATE email_batches SET message_ids = %(ids)s, answered_at = now(), items = %(items)s "
        "WHERE batch_key = %(batch)s",
        {
            "batch": batch.batch_key,
            "ids": ids,
            "items": Json([item.model_dump(exclude={"payload"}) for item in batch.items]),
        },
    )
    rows = [
        (
            item.workflow_id,
            item.email_type,
            item.recipient,
            item.idempotency_key,
            ids[index],
            "sent" if ids[index] is not None else "failed",
            errors.get(index),
        )
        for index, item in enumerate(batch.items)
    ]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO email_logs (workflow_id, email_type, recipient, idempotency_key, "
            "provider_message_id, status, error) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) WHERE status = 'sent' DO NOTHING",
            rows,
        )
    # A credentials e-mail carried the generated password: accepted, it is never needed again.
    delivered = [
        item.workflow_id
        for index, item in enumerate(batch.items)
        if ids[index] is not None and item.email_type == "credentials"
    ]
    if delivered:
        await conn.execute(
            "UPDATE orders SET encrypted_password = NULL, updated_at = now() "
            "WHERE order_id = ANY(%(ids)s::text[]) AND encrypted_password IS NOT NULL",
            {"ids": delivered},
        )
    refused = [batch.items[index].idempotency_key for index in errors]
    if refused:
        await release(conn, batch.batch_key, refused)


async def release(
    conn: AsyncConnection[Any], batch_key: str, keys: list[str] | None = None
) -> None:
    """Let go of the claims (all of the batch's, or `keys`): Resend sent none of those e-mails.
    All of a batch's are kept once its answer is recorded: a twin's re-send of it was heard."""
    await conn.execute(
        "DELETE FROM email_claims WHERE batch_key = %(batch)s "
        "AND (%(keys)s::text[] IS NOT NULL OR NOT EXISTS ("
        "    SELECT 1 FROM email_batches WHERE batch_key = %(batch)s AND message_ids IS NOT NULL)) "
        "AND (%(keys)s::text[] IS NULL OR idempotency_key = ANY(%(keys)s::text[]))",
        {"batch": batch_key, "keys": keys},
    )


async def reserve_slot(conn: AsyncConnection[Any], service: str, spacing: float) -> float:
    """Take the next request slot of `service`, `spacing` seconds after the one before it: answer
    the seconds to wait until it starts (0 when the rate is not reached). Shared by every process,
    and measured on the database's clock only, so the workers' clocks do not matter."""
    cur = await conn.execute(
        """
        INSERT INTO provider_request_slots AS s (service, next_at)
        VALUES (%(service)s, clock_timestamp() + make_interval(secs => %(spacing)s))
        ON CONFLICT (service) DO UPDATE
            SET next_at = greatest(s.next_at, clock_timestamp())
                          + make_interval(secs => %(spacing)s)
        RETURNING extract(epoch FROM s.next_at - make_interval(secs => %(spacing)s)
                                     - clock_timestamp())
        """,
        {"service": service, "spacing": spacing},
    )
    row = await cur.fetchone()
    assert row is not None
    return max(0.0, float(row[0]))


async def hold_back(conn: AsyncConnection[Any], service: str, seconds: float) -> None:
    """No slot of `service` starts within `seconds` (the provider's Retry-After)."""
    await conn.execute(
        """
        INSERT INTO provider_request_slots AS s (service, next_at)
        VALUES (%(service)s, clock_timestamp() + make_interval(secs => %(seconds)s))
        ON CONFLICT (service) DO UPDATE
            SET next_at = greatest(s.next_at, clock_timestamp()
                                              + make_interval(secs => %(seconds)s))
        """,
        {"service": service, "seconds": seconds},
    )
