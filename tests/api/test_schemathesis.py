"""Schemathesis against the real API: real PostgreSQL, Temporal dev server, worker and sandbox.

Every operation of the OpenAPI document (read from the running API, so routes other people add
are covered without editing this file) gets generated cases, valid and invalid, with working
credentials filled in per request (admin token, a real user's JWT, Mercado Pago's signature,
AppMax's and Asaas's tokens) so the cases reach the code behind the checks. Every response must
be no 5xx and agree with the document: status, content type and body schema."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from psycopg_pool import AsyncConnectionPool
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from providers.clients import open_provider_clients
from providers.mercadopago_signature import sign
from tests.conftest import TEST_SECRETS, make_settings, sandbox_urls
from tests.sagas.conftest import person
from tests.support import SandboxHandle, serve, user_token
from worker import build_worker

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox, pytest.mark.timeout(600)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Cases per operation and generation mode: 13 operations (a few with nothing to make invalid)
# give about 2,100 cases.
EXAMPLES = 100
MIN_CASES = 2000


def _authorizer(user_jwt: str) -> Callable[[Any], None]:
    """Fills working credentials into a generated case, by route."""
    admin = f"Bearer {TEST_SECRETS['admin_token']}"
    user = f"Bearer {user_jwt}"

    def authorize(case: Any) -> None:
        path: str = case.path
        headers = dict(case.headers or {})
        if path.startswith("/api/v1/admin/"):
            headers["Authorization"] = admin
        elif path.startswith("/api/v1/") and path != "/api/v1/profiles/register":
            headers["Authorization"] = user
        elif path == "/webhooks/appmax":
            case.query = dict(case.query or {}) | {"token": TEST_SECRETS["appmax_webhook_token"]}
        elif path == "/webhooks/asaas":
            headers["asaas-access-token"] = TEST_SECRETS["asaas_webhook_token"]
        elif path == "/webhooks/mercadopago":
            query = case.query or {}
            data_id = query.get("data.id")
            request_id = str(uuid.uuid4())
            headers["x-request-id"] = request_id
            headers["x-signature"] = sign(
                TEST_SECRETS["mercadopago_webhook_secret"],
                data_id=data_id if isinstance(data_id, str) else None,
                request_id=request_id,
                ts=int(time.time()),
            )
        case.headers = headers

    return authorize


def _fuzz(base_url: str, user_jwt: str) -> tuple[int, list[str]]:
    """Run every operation in both modes; answer the number of cases and the failures."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    authorize = _authorizer(user_jwt)
    session = requests.Session()
    calls = 0
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                authorize(case)
                calls += 1
                response = case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)
                statuses.setdefault(case.operation.label, Counter())[response.status_code] += 1

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (no parameters, or only a header we fill in)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:3000])
    for label, seen in sorted(statuses.items()):
        print(f"{label}: {dict(sorted(seen.items()))}")  # which answers the cases reached
    return calls, failures


async def _terminate_all(client: Client, task_queue: str) -> None:
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for workflow in client.list_workflows(query):
        try:
            await client.get_workflow_handle(workflow.id, run_id=workflow.run_id).terminate()
        except RPCError:
            pass  # finished meanwhile


async def test_the_api_agrees_with_its_openapi_document(
    pool: AsyncConnectionPool,
    sandbox: SandboxHandle,
    temporal_client: Client,
    task_queue: str,
    database_url: str,
) -> None:
    """Over 2,000 generated cases across every operation: no 5xx, and every status, content
    type and body is one the OpenAPI document declares."""
    settings = make_settings(
        database_url=database_url,
        temporal_task_queue=task_queue,
        signup_answer_timeout_seconds=10,
        http_timeout_seconds=2,
        provisioning_retry_schedule="1s,1s",
        purchase_step_attempts=2,
        purchase_step_initial_interval_seconds=0.05,
        **sandbox_urls(sandbox.url),
    )
    app = create_app(settings, pool=pool, temporal=temporal_client)
    async with (
        open_provider_clients(settings) as providers,
        build_worker(temporal_client, settings, pool, providers, task_queue=task_queue),
        serve(app) as url,
    ):
        await sandbox.set_gateway(url)
        # A real user with a subscription, so user routes and grants reach their logic.
        registered = await asyncio.to_thread(
            requests.post, f"{url}/api/v1/profiles/register", json=person(0), timeout=30
        )
        assert registered.status_code == 201, registered.text
        jwt = user_token(TEST_SECRETS["supabase_jwt_secret"], registered.json()["auth_user_id"])
        checkout = await asyncio.to_thread(
            requests.post,
            f"{url}/api/v1/checkout/create",
            json={"plan_id": "basic", "billing_type": "PIX"},
            headers={"Authorization": f"Bearer {jwt}"},
            timeout=30,
        )
        assert checkout.status_code == 201, checkout.text

        started = time.monotonic()
        try:
            calls, failures = await asyncio.to_thread(_fuzz, url, jwt)
        finally:
            # The cases started purchase workflows with generated ids: none may outlive this
            # test's worker, or a later test's order with the same id would signal it.
            await _terminate_all(temporal_client, task_queue)
        elapsed = time.monotonic() - started
    print(f"{calls} cases in {elapsed:.0f}s")
    assert not failures, "\n\n".join(failures)
    assert calls >= MIN_CASES, f"only {calls} cases in {elapsed:.0f}s"
