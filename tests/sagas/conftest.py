"""An end-to-end signup stack per test: the API (in process), a worker with the real activities on
the test's task queue, the sandbox over real HTTP, the real database and Temporal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from activities.reconcile import Orphan, find_orphans
from api.app import create_app
from contracts.signups import RegistrationInput
from contracts.signups import registration_workflow_id as workflow_id
from providers.clients import ProviderClients, open_provider_clients
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from tests.support import SandboxHandle, app_client, user_token
from worker import build_worker

CPFS = ["52998224725", "11144477735", "39053344705", "15350946056", "71428793860"]


def person(n: int = 0, **overrides: str) -> dict[str, str]:
    """Valid registration data; `n` picks a distinct e-mail, phone and CPF."""
    return {
        "name": f"Pessoa {n}",
        "email": f"pessoa{n}@example.com",
        "phone": f"+55119876543{n:02d}",
        "cpfCnpj": CPFS[n % len(CPFS)],
        "password": "segredo123",
    } | overrides


def registration_input(data: dict[str, str], sealed_password: str = "sealed") -> RegistrationInput:
    """The registration saga's input for `person(...)` data (its password already sealed, or a
    stand-in where no activity unseals it)."""
    return RegistrationInput(
        name=data["name"],
        email=data["email"],
        phone=data["phone"],
        cpf_cnpj=data["cpfCnpj"],
        sealed_password=sealed_password,
    )


@dataclass
class SignupStack:
    api: httpx.AsyncClient
    sandbox: SandboxHandle
    pool: Any
    temporal: Any
    providers: ProviderClients
    app: Any

    async def register(self, n: int = 0, **overrides: str) -> httpx.Response:
        return await self.api.post("/api/v1/profiles/register", json=person(n, **overrides))

    async def checkout(self, auth_user_id: str, **overrides: str) -> httpx.Response:
        token = user_token(TEST_SECRETS["supabase_jwt_secret"], auth_user_id)
        return await self.api.post(
            "/api/v1/checkout/create",
            json={"plan_id": "basic", "billing_type": "PIX"} | overrides,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def registered(self, n: int = 0) -> dict[str, str]:
        response = await self.register(n)
        assert response.status_code == 201, response.text
        body: dict[str, str] = response.json()
        return body

    async def profiles(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT profile_id::text, auth_user_id::text, email, asaas_customer_id,"
                " subscription_id FROM profiles ORDER BY created_at"
            )
            names = [c.name for c in cur.description]
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def orphans(self) -> list[Orphan]:
        return await find_orphans(self.pool, self.providers)

    async def settle_payment(self, payment_id: str) -> Any:
        """Wait until the payment's workflow has applied it; its outcome (None when no workflow
        handles Asaas payments, as before the webhook handed them over)."""
        from temporalio.service import RPCError, RPCStatusCode

        from contracts.asaas import PaymentOutcome

        handle = self.temporal.get_workflow_handle(
            f"asaas-payment:{payment_id}", result_type=PaymentOutcome
        )
        try:
            return await handle.result()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def shipment(self, auth_user_id: str, key: str) -> httpx.Response:
        token = user_token(TEST_SECRETS["supabase_jwt_secret"], auth_user_id)
        return await self.api.post(
            "/api/v1/shipments",
            json={
                "recipient_name": "Ana",
                "destination_postal_code": "01310-100",
                "weight_grams": 500,
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )

    async def balance(self, auth_user_id: str) -> httpx.Response:
        token = user_token(TEST_SECRETS["supabase_jwt_secret"], auth_user_id)
        return await self.api.get("/api/v1/credits", headers={"Authorization": f"Bearer {token}"})

    async def journal(self, workflow_id: str) -> list[tuple[str, str | None]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT event, details->>'step' FROM integration_logs WHERE workflow_id = %s"
                " AND event <> 'stage_changed' ORDER BY (details->>'seq')::int",
                (workflow_id,),
            )
            return list(await cur.fetchall())


@pytest.fixture
async def stack(pool, sandbox, temporal_client, task_queue, database_url):
    settings = make_settings(
        database_url=database_url,
        temporal_task_queue=task_queue,
        signup_answer_timeout_seconds=20,
        http_timeout_seconds=2,
        **sandbox_urls(sandbox.url),
    )
    app = create_app(settings, pool=pool, temporal=temporal_client)
    async with (
        open_provider_clients(settings) as providers,
        build_worker(temporal_client, settings, pool, providers, task_queue=task_queue),
        app_client(app) as api,
    ):
        yield SignupStack(api, sandbox, pool, temporal_client, providers, app)


def registration_id(n: int = 0) -> str:
    """The workflow id of `person(n)`'s registration (the keyed hash of the e-mail)."""
    return workflow_id(f"pessoa{n}@example.com", TEST_SECRETS["registration_id_key"])


@pytest.fixture
async def db_fault(pool):
    """Make UPDATEs/INSERTs that set `table.column` to non-NULL fail, as a broken database would.
    Undoing (setting NULL, deleting) still works, like a database that refuses one write."""
    created: list[str] = []

    async def inject(table: str, column: str) -> None:
        name = f"sagas_fault_{table}_{column}"
        async with pool.connection() as conn:
            await conn.execute(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'injected fault on {table}.{column}'; END $$;
                CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OF {column} ON {table}
                FOR EACH ROW WHEN (NEW.{column} IS NOT NULL) EXECUTE FUNCTION {name}();
                """
            )
        # IF EXISTS: a test may have cleared the fault itself (see `clear_db_fault`).
        created.append(
            f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
        )

    yield inject
    async with pool.connection() as conn:
        for drop in created:
            await conn.execute(drop)


async def clear_db_fault(pool, table: str, column: str) -> None:
    """Undo `db_fault(table, column)` before the test ends: the database works again."""
    name = f"sagas_fault_{table}_{column}"
    async with pool.connection() as conn:
        await conn.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();")


async def run_cli(*args: str, **env_overrides: str) -> tuple[int, str]:
    """Run `entrega ARGS` as a separate process (as an operator would); (exit code, stdout)."""
    code, stdout, _ = await run_cli_capturing(*args, **env_overrides)
    return code, stdout


async def run_cli_capturing(*args: str, **env_overrides: str) -> tuple[int, str, str]:
    """`run_cli`, also returning stderr; exit codes other than 0 and 1 fail the test."""
    import asyncio
    import os
    import sys

    env = {
        **os.environ,
        **{name.upper(): value for name, value in TEST_SECRETS.items()},
        "ENTREGA_ENV": "test",
        **env_overrides,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    if process.returncode not in (0, 1):
        raise AssertionError(stderr.decode())
    return process.returncode, stdout.decode(), stderr.decode()


def cli_env(database_url: str, sandbox_url: str, temporal_address: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        **{name.upper(): url for name, url in sandbox_urls(sandbox_url).items()},
    }
