"""One purchase, observed the way an operator would: JSON log lines, the worker's Prometheus
scrape and one OpenTelemetry trace, all over the real stack (gateway, Temporal, worker, sandbox)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from telemetry import logs, metrics, tracing
from telemetry.temporal import RequestIdInterceptor
from tests.conftest import TEST_SECRETS, converter_for_tests
from tests.credits.conftest import Ledger
from tests.purchases.stack import Stack, purchase_stack, stack_settings
from tests.support import SandboxHandle, free_port, user_token

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

EMAIL = "ana.observada@example.com"


@pytest.fixture
async def observed(
    database_url: str,
    pool: AsyncConnectionPool,
    temporal_client: Client,
    sandbox: SandboxHandle,
    task_queue: str,
) -> AsyncIterator[tuple[Stack, io.StringIO, InMemorySpanExporter, str]]:
    """The purchase stack with JSON logs captured, spans kept in memory and a worker whose own
    runtime serves Prometheus on a free port (the process-global runtime stays untouched)."""
    lines = io.StringIO()
    handler = logs.configure("test", json_lines=True, stream=lines, secrets=TEST_SECRETS.values())
    spans = InMemorySpanExporter()
    tracing.configure("test", None, exporter=spans, secrets=TEST_SECRETS.values())
    metrics_address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        temporal_client.service_client.config.target_host,
        namespace=temporal_client.namespace,
        data_converter=converter_for_tests(),
        interceptors=[RequestIdInterceptor(), *tracing.temporal_interceptors()],
        runtime=metrics.worker_runtime(metrics_address),
    )
    settings = stack_settings(database_url, sandbox.url, client, task_queue)
    try:
        async with purchase_stack(settings, pool, client, sandbox) as stack:
            yield stack, lines, spans, metrics_address
    finally:
        tracing.shutdown()
        logging.getLogger().removeHandler(handler)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_one_purchase_is_one_trace_logged_and_counted(
    observed: tuple[Stack, io.StringIO, InMemorySpanExporter, str],
) -> None:
    """Each stage change is a JSON line with the workflow id and the notification's request id;
    the worker's scrape has the SDK's and Entrega's metrics; one trace spans webhook → workflow
    → activity → HTTP call; no e-mail address or secret is in any line or span attribute."""
    stack, lines, spans, metrics_address = observed
    payment_id = await stack.mp_payment(email=EMAIL)
    await stack.mp_notify(payment_id)
    order_id = f"purchase:mercadopago:{payment_id}"
    await stack.wait_stage(order_id, "completed")

    logged = _json_lines(lines.getvalue())
    webhook = [
        line
        for line in logged
        if line.get("event") == "access" and line.get("route") == "/webhooks/mercadopago"
    ]
    assert webhook and webhook[0]["status"] == 200, webhook
    request_id = webhook[0]["request_id"]
    changes = [
        line
        for line in logged
        if line.get("event") == "stage_changed" and line.get("order_id") == order_id
    ]
    assert [c["stage"] for c in changes] == [
        "queued",
        "creating_user",
        "sending_credentials",
        "completed",
    ]
    for change in changes:
        assert change["workflow_id"] == order_id
        assert change["request_id"] == request_id
        assert change["service"] == "test"
    # Written by the activity that does the step (patch purchases-lean-path).
    assert [c["activity"] for c in changes] == [
        "purchases.match_product",
        "purchases.create_user",
        "purchases.create_user",
        "purchases.set_stage",
    ]
    assert EMAIL not in lines.getvalue()
    for secret in TEST_SECRETS.values():
        assert secret not in lines.getvalue()

    async with httpx.AsyncClient() as http:
        scrape = (await http.get(f"http://{metrics_address}/metrics")).text
    assert "temporal_workflow_task_execution_latency" in scrape  # the SDK's own
    assert "temporal_activity_execution_latency" in scrape
    assert "entrega_purchase_stage_transitions_total{" in scrape
    assert 'stage="completed"' in scrape
    assert "entrega_purchase_provisioning_seconds_bucket" in scrape

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name.startswith("POST /webhooks/mercadopago")]
    assert server, sorted({s.name for s in finished})
    trace_id = server[0].context.trace_id
    names = {s.name for s in finished if s.context.trace_id == trace_id}
    assert any("StartWorkflow:PurchaseWorkflow" in n for n in names), names
    assert any(n.startswith(("RunWorkflow:", "HandleSignal:")) for n in names), names
    assert "RunActivity:purchases.create_user" in names, names
    http_calls = [
        s
        for s in finished
        if s.context.trace_id == trace_id
        and "/lovable/create-user"
        in str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url"))
    ]
    assert http_calls, names
    for span in finished:
        for value in (span.attributes or {}).values():
            assert EMAIL not in str(value), span
            assert "test-appmax-token" not in str(value), span


async def test_every_response_carries_a_request_id(
    observed: tuple[Stack, io.StringIO, InMemorySpanExporter, str],
) -> None:
    """X-Request-ID: the caller's is echoed, a new one is made otherwise, errors included."""
    stack = observed[0]
    echoed = await stack.gateway.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    made = await stack.gateway.get("/no-such-route")
    assert made.status_code == 404 and len(made.headers["x-request-id"]) == 32
    refused = await stack.gateway.post("/webhooks/appmax?token=wrong", json={})
    assert refused.status_code == 401 and refused.headers["x-request-id"]
    refused_lines = [
        line
        for line in _json_lines(observed[1].getvalue())
        if line.get("event") == "webhook_refused"
    ]
    assert refused_lines and refused_lines[-1]["provider"] == "appmax"
    assert "wrong" not in json.dumps(refused_lines)


OPS = Path(__file__).parent.parent.parent / "ops"
_METRIC = re.compile(r"\b((?:entrega|temporal)_[a-z_]+)")


def _value(scrape: str, series: str) -> float:
    for line in scrape.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ops_metric_names() -> set[str]:
    """Every metric the dashboard's and the alert rules' queries name."""
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((OPS / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return {name for expr in exprs for name in _METRIC.findall(expr)}


async def test_a_full_run_is_counted_and_logs_no_personal_data(
    observed: tuple[Stack, io.StringIO, InMemorySpanExporter, str],
) -> None:
    """After a purchase, a signup (registration + checkout) and spends, the API's and the
    worker's real scrapes hold every metric the Grafana dashboard and the alert rules name, with
    the signup and the spends counted; no line of the whole run has personal data or a secret."""
    stack, lines, _, metrics_address = observed
    payment_id = await stack.mp_payment(email=EMAIL)
    await stack.mp_notify(payment_id)
    await stack.wait_stage(f"purchase:mercadopago:{payment_id}", "completed")

    person = {
        "name": "Joana Pereira",
        "email": "joana.pereira@example.com",
        "phone": "+5511987654399",
        "cpfCnpj": "52998224725",
        "password": "segredo123",
    }
    registered = await stack.gateway.post("/api/v1/profiles/register", json=person)
    assert registered.status_code == 201, registered.text
    token = user_token(TEST_SECRETS["supabase_jwt_secret"], registered.json()["auth_user_id"])
    checkout = await stack.gateway.post(
        "/api/v1/checkout/create",
        json={"plan_id": "basic", "billing_type": "PIX"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert checkout.status_code == 201, checkout.text

    before = (await stack.gateway.get("/metrics")).text
    customer = await Ledger(stack.pool).customer(monthly_credits=1)
    shipment = {
        "recipient_name": "Loja X",
        "destination_postal_code": "01310-100",
        "weight_grams": 500,
    }
    spent = await stack.gateway.post("/api/v1/shipments", json=shipment, headers=customer.headers())
    assert spent.status_code == 201, spent.text
    refused = await stack.gateway.post(
        "/api/v1/shipments", json=shipment, headers=customer.headers()
    )
    assert refused.status_code == 402

    async with httpx.AsyncClient() as http:
        worker_scrape = (await http.get(f"http://{metrics_address}/metrics")).text
    scrape = worker_scrape + (await stack.gateway.get("/metrics")).text
    present = {
        line.split("{")[0].split(" ")[0] for line in scrape.splitlines() if line[:1].isalpha()
    }
    missing = sorted(ops_metric_names() - present)
    assert not missing, missing
    assert re.search(r'entrega_saga_outcomes_total\{[^}]*level="1"[^}]*result="completed"', scrape)
    assert re.search(r'entrega_saga_outcomes_total\{[^}]*level="2"[^}]*result="completed"', scrape)
    # The API's counters are the process's (earlier tests counted too): compare with before.
    spent_series = 'entrega_credits_spent_total{source="monthly"}'
    refused_series = 'entrega_credits_refused_total{reason="insufficient_credits"}'
    assert _value(scrape, spent_series) - _value(before, spent_series) == 1
    assert _value(scrape, refused_series) - _value(before, refused_series) == 1

    text = lines.getvalue()
    assert '"event": "spend_refused"' in text
    for private in (EMAIL, *person.values(), "529.982.247-25", "Ana", "Souza"):
        assert private not in text, private
    for secret in TEST_SECRETS.values():
        assert secret not in text, secret
