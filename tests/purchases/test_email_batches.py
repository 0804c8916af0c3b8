"""E-mails sent up to 100 per Resend request (`activities/mailer.py`), against the sandbox and
PostgreSQL: each e-mail accepted once, lost answers, 429s, refusals, and one limit for every
worker process."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from activities.credentials import cipher
from activities.mailer import Mailer
from db import email_batches
from db.email_batches import BatchItem
from providers.clients import ProviderClients, open_provider_clients
from providers.errors import PermanentError, RateLimitedError, TransientError
from providers.resend import EmailMessage
from tests.conftest import make_settings, sandbox_urls
from tests.support import SandboxHandle

pytestmark = [pytest.mark.db, pytest.mark.sandbox]

CLIENT_TIMEOUT_SECONDS = 1.0
SEALER = cipher("test-credentials-key")
ERASE_ANSWERED = (
    Path(__file__).resolve().parents[2] / "db/migrations/0098_answered_batches_without_bodies.sql"
)


def item(n: int, to: str | None = None) -> BatchItem:
    message = EmailMessage(
        from_="Entrega <nao-responda@entrega.app>",
        to=to or f"cliente{n}@example.com",
        subject="Seu acesso",
        html=f"<p>{n}</p>",
        text=str(n),
        tags={"email_type": "credentials", "order_id": f"o{n}"},
    )
    return BatchItem(
        idempotency_key=f"o{n}:credentials",
        workflow_id=f"o{n}",
        email_type="credentials",
        recipient=to or f"cliente{n}@example.com",
        payload=message.payload(),
    )


@asynccontextmanager
async def mailers(
    sandbox: SandboxHandle, pool: AsyncConnectionPool, timeout: float
) -> AsyncIterator[list[Mailer]]:
    """Two worker processes' mailers: their own Resend clients (giving up after `timeout`
    seconds), one database."""
    settings = make_settings(**sandbox_urls(sandbox.url), http_timeout_seconds=timeout)
    async with AsyncExitStack() as stack:
        made = []
        for _ in range(2):
            clients: ProviderClients = await stack.enter_async_context(
                open_provider_clients(settings)
            )
            made.append(Mailer(pool, clients.resend, requests_per_second=2, sealer=SEALER))
        yield made


@pytest.fixture
async def workers(sandbox: SandboxHandle, pool: AsyncConnectionPool) -> AsyncIterator[list[Mailer]]:
    """Two workers' mailers with the production clients' patience."""
    async with mailers(sandbox, pool, timeout=10) as made:
        yield made


async def sent_logs(pool: AsyncConnectionPool) -> Counter[str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT idempotency_key FROM email_logs WHERE status = 'sent'")
        return Counter(row[0] for row in await cur.fetchall())


async def claims(pool: AsyncConnectionPool) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT idempotency_key FROM email_claims")
        return [row[0] for row in await cur.fetchall()]


def by_key(emails: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["tags"]["order_id"] for e in emails)


async def test_twins_in_two_workers_send_each_e_mail_once(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """The same 60 e-mails handed to two workers' mailers, twice each, at once: every e-mail is
    accepted once, in few requests, and every twin hears the same id."""
    items = [item(n) for n in range(60)]
    calls = [mailer.deliver(i) for i in items for mailer in workers for _ in range(2)]
    ids = await asyncio.gather(*calls)
    per_key: dict[str, set[str]] = {}
    for call, message_id in zip(
        [i for i in items for _ in workers for _ in range(2)], ids, strict=True
    ):
        per_key.setdefault(call.idempotency_key, set()).add(message_id)
    assert all(len(found) == 1 for found in per_key.values())
    emails = (await sandbox.state())["emails"]
    assert by_key(emails) == Counter({f"o{n}": 1 for n in range(60)})
    assert len({e["batch_idempotency_key"] for e in emails}) <= 4
    assert await sent_logs(pool) == Counter({i.idempotency_key: 1 for i in items})


async def test_lost_answer_is_recovered_by_re_sending_the_same_batch(
    sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """Resend accepts the batch but the answer never arrives (the client gives up): the retry,
    even from another worker, re-sends that very batch under its key, and Resend answers the
    first ids; no second e-mail."""
    async with mailers(sandbox, pool, timeout=CLIENT_TIMEOUT_SECONDS) as workers:
        await _lose_an_answer_then_recover(workers, sandbox, pool)


async def _lose_an_answer_then_recover(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    await sandbox.fault(
        "resend",
        "send_batch",
        latency_ms=int(CLIENT_TIMEOUT_SECONDS * 1500),
        times=1,
        after_effect=True,
    )
    first, second = item(1), item(2)
    lost = await asyncio.gather(
        workers[0].deliver(first), workers[0].deliver(second), return_exceptions=True
    )
    assert all(isinstance(outcome, TransientError) for outcome in lost)
    assert len((await sandbox.state())["emails"]) == 2
    assert sorted(await claims(pool)) == [first.idempotency_key, second.idempotency_key]
    ids = [await workers[1].deliver(second), await workers[0].deliver(first)]
    emails = (await sandbox.state())["emails"]
    assert sorted(ids) == sorted(e["id"] for e in emails) and len(emails) == 2
    assert await sent_logs(pool) == Counter({first.idempotency_key: 1, second.idempotency_key: 1})


async def test_lost_answer_and_forgotten_key_sends_again_never_loses(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """The documented trade-off: when Resend lost both the answer and its memory of the batch's
    key, the re-sent batch goes out a second time. Each e-mail then reached its customer twice,
    none is lost, and email_logs still holds one `sent` row each."""
    await sandbox.fault("resend", "send_batch", status=503, times=1, after_effect=True)
    with pytest.raises(TransientError):
        await workers[0].deliver(item(1))
    assert await workers[0].deliver(item(1))
    assert by_key((await sandbox.state())["emails"]) == Counter({"o1": 2})
    assert await sent_logs(pool) == Counter({"o1:credentials": 1})


async def test_429_lets_the_claims_go_and_holds_every_worker_back(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """A 429 sent nothing: the e-mail is free for a new batch, the caller hears Retry-After
    (which Temporal waits), and no worker's next request starts before it has passed."""
    await sandbox.fault("resend", "send_batch", status=429, retry_after=2, times=1)
    with pytest.raises(RateLimitedError) as raised:
        await workers[0].deliver(item(1))
    assert raised.value.retry_after == 2
    assert await claims(pool) == []
    started = time.monotonic()
    await workers[1].deliver(item(1))
    assert time.monotonic() - started >= 1.5
    assert by_key((await sandbox.state())["emails"]) == Counter({"o1": 1})


async def test_an_invalid_e_mail_is_refused_alone(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """In one batch, Resend refuses the e-mail with a bad address: its caller gets a permanent
    validation error and its claim is let go; the others are sent."""
    outcomes = await asyncio.gather(
        workers[0].deliver(item(1)),
        workers[0].deliver(item(2, to="nao-e-um-endereco")),
        workers[0].deliver(item(3)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], str) and isinstance(outcomes[2], str)
    assert isinstance(outcomes[1], PermanentError) and outcomes[1].code == "validation_error"
    emails = (await sandbox.state())["emails"]
    assert by_key(emails) == Counter({"o1": 1, "o3": 1})
    assert len({e["batch_idempotency_key"] for e in emails}) == 1
    assert "o2:credentials" not in await claims(pool)
    assert await sent_logs(pool) == Counter({"o1:credentials": 1, "o3:credentials": 1})


async def test_two_workers_share_the_limit(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """With the sandbox's limit at 2 requests/s, 400 e-mails from two workers at once all go out
    without one 429: both take their request slots from the same clock."""
    await sandbox.http.post("/_sandbox/rate-limits", json={"service": "resend", "per_second": 2})
    ids = await asyncio.gather(
        *(workers[n % 2].deliver(item(n)) for n in range(400)), return_exceptions=True
    )
    assert all(isinstance(message_id, str) for message_id in ids), ids
    limits = (await sandbox.http.get("/_sandbox/rate-limits")).json()
    assert limits[0]["refused"] == 0
    emails = (await sandbox.state())["emails"]
    assert by_key(emails) == Counter({f"o{n}": 1 for n in range(400)})


async def test_an_answered_batch_keeps_its_claims(pool: AsyncConnectionPool) -> None:
    """Once a batch's answer is recorded (a twin's re-send of it was heard), a late refusal of
    another post of it lets none of its claims go; before that, they go."""
    items = [item(1), item(2)]
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:a", items, SEALER)
        await email_batches.release(conn, "batch:a")
    assert await claims(pool) == []
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:b", items, SEALER)
        batch = await email_batches.claimed_batch(conn, "o1:credentials", SEALER)
        assert batch is not None
        await email_batches.record_answer(conn, batch, ["id-1", "id-2"], {})
        await email_batches.release(conn, "batch:b")
    assert sorted(await claims(pool)) == ["o1:credentials", "o2:credentials"]


async def test_a_recorded_batch_re_sends_the_same_bytes(pool: AsyncConnectionPool) -> None:
    """The bodies come back from email_batches in the order they were written, key by key, so a
    re-send under the batch's key is byte for byte the first request."""
    items = [item(1), item(2)]
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:c", items, SEALER)
        batch = await email_batches.claimed_batch(conn, "o2:credentials", SEALER)
    assert batch is not None
    assert [json.dumps(i.payload) for i in batch.items] == [json.dumps(i.payload) for i in items]


async def test_a_recorded_batch_holds_no_body_in_plaintext(pool: AsyncConnectionPool) -> None:
    """A credentials e-mail carries the generated password: its body is stored sealed, as
    `orders.encrypted_password` is (the storm's privacy scan found bodies in plaintext)."""
    password = "Senha-Gerada-7f3a9c"
    secret = item(3)
    secret.payload["html"] = f"<p>Sua senha: {password}</p>"
    secret.payload["text"] = f"Sua senha: {password}"
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:d", [secret], SEALER)
        cur = await conn.execute(
            "SELECT items::text FROM email_batches WHERE batch_key = 'batch:d'"
        )
        row = await cur.fetchone()
        assert row is not None and password not in row[0]
        batch = await email_batches.claimed_batch(conn, "o3:credentials", SEALER)
    assert batch is not None and batch.items[0].payload == secret.payload


async def _stored_items(pool: AsyncConnectionPool) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT items::text FROM email_batches")
        return [row[0] for row in await cur.fetchall()]


async def test_an_answered_batch_keeps_no_body(
    workers: list[Mailer], sandbox: SandboxHandle, pool: AsyncConnectionPool
) -> None:
    """Once Resend's answer is recorded the batch's bodies are erased, sealed or not (a
    credentials e-mail's holds the password `orders.encrypted_password` gives up at that moment);
    a retry of its e-mail, from another worker, still hears its id, and nothing goes out again."""
    first = await workers[0].deliver(item(1))
    stored = await _stored_items(pool)
    assert stored and not any("sealed_payload" in items for items in stored), stored
    assert await workers[1].deliver(item(1)) == first
    assert by_key((await sandbox.state())["emails"]) == Counter({"o1": 1})


async def test_migration_0098_erases_the_bodies_of_batches_answered_before(
    pool: AsyncConnectionPool,
) -> None:
    """The bodies of batches answered before `record_answer` erased them go, each item keeping
    its keys and place; a batch still waiting for its answer keeps its sealed bodies."""
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:answered", [item(1), item(2)], SEALER)
        await email_batches.claim(conn, "batch:waiting", [item(3)], SEALER)
        await conn.execute(
            "UPDATE email_batches SET message_ids = ARRAY['id-1', 'id-2'] "
            "WHERE batch_key = 'batch:answered'"
        )
        await conn.execute(ERASE_ANSWERED.read_text())
        answered = await email_batches.claimed_batch(conn, "o2:credentials", SEALER)
        waiting = await email_batches.claimed_batch(conn, "o3:credentials", SEALER)
    assert answered is not None and waiting is not None
    assert [i.idempotency_key for i in answered.items] == ["o1:credentials", "o2:credentials"]
    assert [i.payload for i in answered.items] == [{}, {}]
    assert answered.message_ids == ["id-1", "id-2"]
    assert waiting.items[0].payload == item(3).payload
    assert sum("sealed_payload" in items for items in await _stored_items(pool)) == 1


async def test_an_unanswered_batch_without_its_bodies_is_never_re_sent(
    pool: AsyncConnectionPool,
) -> None:
    """Only an answered batch may have lost its bodies: one still to be posted again must be the
    same request, so reading it without them fails instead of posting empty e-mails."""
    async with pool.connection() as conn, conn.transaction():
        await email_batches.claim(conn, "batch:bare", [item(1)], SEALER)
        await conn.execute(
            "UPDATE email_batches "
            "SET items = json_build_array((items->0)::jsonb - 'sealed_payload')"
        )
        with pytest.raises(ValueError, match="lost the body"):
            await email_batches.claimed_batch(conn, "o1:credentials", SEALER)
