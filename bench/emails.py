"""Credentials e-mails per second under Resend's limit of 2 requests/s (issue 15), in one run:

(e) N orders waiting for their credentials e-mail (rows as `create_user` leaves them: user made,
    password sealed) get `purchases.send_credentials` through the stack's e-mail task queue, as
    purchases do, with the sandbox's Resend limit ON at 2 requests/s for every endpoint. Reported:
    credentials e-mails accepted by the sandbox per second (target ≥ 50), the requests and 429s
    it took, and any e-mail sent twice or not at all (both must be 0).
(baseline) one e-mail per request, the design before batches, through the same limit for a few
    seconds: e-mails/s accepted. A purchase sends two e-mails, so the old ceiling was half of it
    in credentials e-mails.

It starts its own stack on free ports (embedded PostgreSQL, Temporal dev server, sandbox,
`entrega worker` and `entrega api`, as `entrega dev` does) with RESEND_RATE_LIMIT=2. Prints the
figures and writes bench/results/emails.json.
    .venv/bin/python -m bench.emails [--orders 2000] [--baseline-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.worker import Worker

from bench.common import dev_stack_env, free_port, write_result
from bench.email_fanout import FAN_OUT, FanOut, SendCredentialsFanOut
from devstack import DevStack

LIMIT_PER_SECOND = 2.0


def _orders(database_url: str, credentials_key: str, run: str, count: int) -> list[str]:
    """`count` orders as `create_user` leaves them: a Lovable user, the password sealed."""
    from activities.credentials import cipher

    sealer = cipher(credentials_key)
    ids = [f"purchase:mercadopago:bench-{run}-{n}" for n in range(count)]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO orders (order_id, provider, provider_order_id, stage, customer_email, "
            "customer_name, lovable_user_id, encrypted_password) "
            "VALUES (%s, 'mercadopago', %s, 'sending_credentials', %s, %s, %s, %s)",
            [
                (
                    order_id,
                    f"bench-{run}-{n}",
                    f"cliente{n}-{run}@example.com",
                    f"Cliente {n}",
                    f"user-{run}-{n}",
                    sealer.encrypt(f"senha-{n}".encode()),
                )
                for n, order_id in enumerate(ids)
            ],
        )
    return ids


async def _batched(env: dict[str, str], sandbox: httpx.AsyncClient, count: int) -> dict[str, Any]:
    from settings import Settings
    from workflows.client import connect

    fields = Settings.model_fields
    settings = Settings(
        _env_file=None, **{k.lower(): v for k, v in env.items() if k.lower() in fields}
    )  # type: ignore[call-arg]
    assert settings.database_url
    run = uuid.uuid4().hex[:6]
    ids = await asyncio.to_thread(
        _orders, settings.database_url, settings.secret("credentials_key"), run, count
    )
    client = await connect(settings)
    queue = f"bench-emails-{run}"
    async with Worker(client, task_queue=queue, workflows=[SendCredentialsFanOut]):
        started = time.perf_counter()
        handles = [
            await client.start_workflow(
                SendCredentialsFanOut.run,
                FanOut(order_ids=ids[n : n + FAN_OUT], email_task_queue=settings.email_task_queue),
                id=f"bench-emails-{run}-{n}",
                task_queue=queue,
            )
            for n in range(0, count, FAN_OUT)
        ]
        await asyncio.gather(*(handle.result() for handle in handles))
        elapsed = time.perf_counter() - started
    state = (await sandbox.get("/_sandbox/state")).json()
    mine = {order_id.replace(":", "_") for order_id in ids}
    sent = Counter(
        e["tags"]["order_id"]
        for e in state["emails"]
        if e["tags"].get("email_type") == "credentials" and e["tags"].get("order_id") in mine
    )
    credentials = [
        e
        for e in state["emails"]
        if e["tags"].get("email_type") == "credentials" and e["tags"].get("order_id") in mine
    ]
    batches = {e["batch_idempotency_key"] for e in credentials}
    accepted = sorted(datetime.fromisoformat(e["created_at"]) for e in credentials)
    window = max((accepted[-1] - accepted[0]).total_seconds(), 0.001) if accepted else 0.001
    return {
        "orders": count,
        "seconds_from_scheduling_to_last": round(elapsed, 2),
        "emails_per_s_from_scheduling": round(sum(sent.values()) / elapsed, 1),
        "seconds_first_to_last_accepted": round(window, 2),
        # What the target reads: the rate at which the sandbox accepted them.
        "credentials_emails_per_s": round(sum(sent.values()) / window, 1),
        "requests": len(batches),
        "mean_emails_per_request": round(sum(sent.values()) / max(1, len(batches)), 1),
        "sent_twice": sum(1 for n in sent.values() if n > 1),
        "not_sent": len(mine - set(sent)),
    }


async def _one_per_request(
    env: dict[str, str], sandbox: httpx.AsyncClient, seconds: float
) -> dict[str, Any]:
    """The design before batches: one e-mail per request, waiting out each 429's Retry-After."""
    headers = {"Authorization": f"Bearer {env['RESEND_API_KEY']}"}
    accepted = refused = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        response = await sandbox.post(
            "/resend/emails",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "from": "Entrega <nao-responda@entrega.app>",
                "to": ["base@example.com"],
                "subject": "Seu acesso",
                "text": "t",
            },
        )
        if response.status_code == 429:
            refused += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        else:
            response.raise_for_status()
            accepted += 1
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 2),
        "emails_per_s": round(accepted / elapsed, 2),
        "429s": refused,
    }


async def measure(
    env: dict[str, str], sandbox_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        limit = {"service": "resend", "per_second": LIMIT_PER_SECOND}
        (await sandbox.post("/_sandbox/rate-limits", json=limit)).raise_for_status()
        baseline = await _one_per_request(env, sandbox, args.baseline_seconds)
        await asyncio.sleep(1.5)  # the baseline's last requests out of the window
        batched = await _batched(env, sandbox, args.orders)
        refused = sum(v["refused"] for v in (await sandbox.get("/_sandbox/rate-limits")).json())
    batched["sandbox_429s_total"] = refused
    return {
        "conditions": (
            f"sandbox Resend limit ON at {LIMIT_PER_SECOND:g} requests/s; one worker process; "
            "2 cores shared with the whole stack, the load generator and other engineers' test "
            "runs"
        ),
        "baseline_one_email_per_request": baseline,
        "batched": batched,
        "credentials_emails_per_s": batched["credentials_emails_per_s"],
        "ratio_to_one_email_per_request": round(
            batched["credentials_emails_per_s"] / max(baseline["emails_per_s"], 0.01), 1
        ),
        "target_credentials_emails_per_s": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="entrega-bench-emails-"))
    ports, env = dev_stack_env(
        home,
        {
            "RESEND_RATE_LIMIT": str(LIMIT_PER_SECOND),
            # Not make dev's fixed port, which a running `make dev` (or bench) may hold.
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        },
    )
    sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
    stack = DevStack(home=home, env=env, ports=ports, say=lambda line: print(f"  {line}"))
    print(f"starting a stack in {home} ...", flush=True)
    stack.start()
    try:
        result = asyncio.run(measure(stack.env, sandbox_url, args))
    finally:
        stack.stop()
    write_result("emails", result)
    print(
        f"credentials e-mails/s under Resend's {LIMIT_PER_SECOND:g} requests/s: "
        f"{result['credentials_emails_per_s']} (target ≥ 50); "
        f"{result['ratio_to_one_email_per_request']}× one e-mail per request "
        f"({result['baseline_one_email_per_request']['emails_per_s']}/s) measured in the same "
        "run; 2 cores shared with the whole stack, the load generator and other engineers' "
        "test runs"
    )


if __name__ == "__main__":
    main()
