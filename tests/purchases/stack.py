"""The whole purchase path for end-to-end tests: gateway over real HTTP → Temporal dev server →
worker with the real activities → provider sandbox → PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from click.testing import Result
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from api.app import create_app
from cli import app as cli_app
from db import orders
from providers.clients import open_provider_clients
from settings import Settings
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from tests.purchases.fakes import search_stage
from tests.support import SandboxHandle, serve
from worker import WORKFLOWS, build_activities, build_email_worker
from workflows.purchase_client import query_status

_PASSWORD = re.compile(r"Senha provisória: (\S+)")
ROOT = Path(__file__).resolve().parents[2]


async def entrega(settings: Settings, *args: str, **env: str) -> Result:
    """Run the `entrega` CLI against the stack of `settings` (its database, its Temporal with
    its payload keys), in a thread: it runs its own event loop. `env` adds variables."""
    env = {
        "ENTREGA_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_PAYLOAD_KEYS": settings.secret("temporal_payload_keys"),
        **env,
    }
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)


def worker_process(settings: Settings, **env: str) -> subprocess.Popen[bytes]:
    """A real `entrega worker` process (`python -m cli worker`) on the database, Temporal
    server, task queue and sandbox of `settings`; `env` adds variables."""
    env = {
        **os.environ,
        **{name.upper(): value for name, value in TEST_SECRETS.items()},
        "ENTREGA_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "MERCADOPAGO_API_URL": settings.mercadopago_api_url,
        "LOVABLE_FUNCTIONS_URL": settings.lovable_functions_url,
        "RESEND_API_URL": settings.resend_api_url,
        "SUPABASE_URL": settings.supabase_url,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Stack:
    settings: Settings
    pool: AsyncConnectionPool
    client: Client
    sandbox: SandboxHandle
    gateway: httpx.AsyncClient

    async def mp_payment(self, status: str = "approved", email: str = "ana@example.com") -> str:
        """A payment at the sandbox's Mercado Pago; answers its id."""
        response = await self.sandbox.http.post(
            "/_sandbox/mercadopago/payments",
            json={
                "payer_email": email,
                "payer_first_name": "Ana",
                "payer_last_name": "Souza",
                "amount": "49.90",
                "status": status,
            },
        )
        response.raise_for_status()
        return str(response.json()["id"])

    async def mp_notify(self, payment_id: str) -> dict[str, Any]:
        """Have the sandbox send MP's signed notification to the gateway; answers the delivery."""
        response = await self.sandbox.http.post(
            f"/_sandbox/mercadopago/payments/{payment_id}/notify"
        )
        response.raise_for_status()
        delivery: dict[str, Any] = response.json()
        return delivery

    async def mp_set_status(self, payment_id: str, status: str) -> None:
        response = await self.sandbox.http.post(
            f"/_sandbox/mercadopago/payments/{payment_id}/status", json={"status": status}
        )
        response.raise_for_status()

    async def apphook(
        self, event: str, order_id: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"event": event, **fields}
        if order_id is not None:
            body["order_id"] = order_id
        else:
            body.setdefault(
                "customer",
                {"firstname": "Bia", "lastname": "Lima", "email": "bia@example.com"},
            )
        response = await self.sandbox.http.post("/_sandbox/appmax/orders", json=body)
        response.raise_for_status()
        delivery: dict[str, Any] = response.json()
        return delivery

    async def order(self, order_id: str) -> orders.Order | None:
        async with self.pool.connection() as conn:
            return await orders.get_order(conn, order_id)

    async def wait_stage(self, order_id: str, stage: str, *, seconds: float = 20) -> orders.Order:
        """Wait until the order is in `stage` in the table, the status query and the search
        attribute alike (docs/interfaces.md: the three always agree within seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        seen: tuple[Any, ...] = ()
        while loop.time() < deadline:
            order = await self.order(order_id)
            try:
                queried = (await query_status(self.client, order_id)).stage
                searched = await search_stage(self.client, order_id)
            except Exception:
                queried = searched = None
            seen = (order.stage if order else None, queried, searched)
            if order is not None and seen == (stage, stage, stage):
                return order
            await asyncio.sleep(0.1)
        raise AssertionError(f"{order_id} never reached {stage} everywhere; (db, query, sa)={seen}")

    async def emails(self, to: str | None = None) -> list[dict[str, Any]]:
        state = await self.sandbox.state()
        return [e for e in state["emails"] if to is None or to in str(e["to"])]

    async def login(self, email: str) -> httpx.Response:
        """Log in to the (sandbox) app with the password the credentials e-mail carried."""
        credentials = [
            e for e in await self.emails(email) if e["tags"].get("email_type") == "credentials"
        ]
        assert len(credentials) == 1, credentials
        match = _PASSWORD.search(str(credentials[0]["text"]))
        assert match, credentials[0]["text"]
        return await self.sandbox.http.post(
            "/_sandbox/lovable/login", json={"email": email, "password": match.group(1)}
        )


def stack_settings(
    database_url: str, sandbox_url: str, temporal: Client, task_queue: str, **over: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "temporal_address": temporal.service_client.config.target_host,
        "temporal_task_queue": task_queue,
        "provisioning_retry_schedule": "1s,1s",
        "purchase_step_attempts": 2,
        "purchase_step_initial_interval_seconds": 0.05,
        "http_timeout_seconds": 3.0,
        # Resend's shared limit is proved in tests/storm; here it would only slow e-mails down.
        "resend_rate_limit": 100,
        **sandbox_urls(sandbox_url),
        **over,
    }
    return make_settings(**values)


@asynccontextmanager
async def purchase_stack(
    settings: Settings, pool: AsyncConnectionPool, client: Client, sandbox: SandboxHandle
) -> AsyncIterator[Stack]:
    async with open_provider_clients(settings) as providers:
        worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=list(WORKFLOWS),
            activities=build_activities(settings, pool, providers),
        )
        email_worker = build_email_worker(client, settings, pool, providers)
        async with (
            worker,
            email_worker,
            serve(create_app(settings, pool=pool, temporal=client)) as url,
        ):
            await sandbox.set_gateway(url)
            async with httpx.AsyncClient(base_url=url, timeout=10) as gateway:
                yield Stack(settings, pool, client, sandbox, gateway)
