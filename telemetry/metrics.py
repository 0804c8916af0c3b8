"""Prometheus metrics: the API's (prometheus-client, multiprocess-safe) and the worker's (the
Temporal SDK's runtime telemetry plus Entrega's own, through the SDK's metric meter).

Each worker process serves its metrics on its own WORKER_METRICS_ADDRESS; the API serves
`/metrics`. With several API processes on one host, set PROMETHEUS_MULTIPROC_DIR (an empty
directory shared by them, emptied before they start) and every process answers for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# --- the API -------------------------------------------------------------------------------------

WEBHOOK_OUTCOMES = Counter(
    "entrega_webhook_outcomes_total",
    "Webhook deliveries by provider and result "
    "(accepted, ignored, duplicate, bad_signature, replay, malformed, unavailable)",
    ["provider", "result"],
)
CREDITS_SPENT = Counter(
    "entrega_credits_spent_total",
    "Credits spent on shipments, by source (monthly, purchase)",
    ["source"],
)
CREDITS_REFUSED = Counter(
    "entrega_credits_refused_total", "Shipments refused for lack of credits", ["reason"]
)
NOTICES_INBOXED = Counter(
    "entrega_intake_inboxed_total",
    "Payment notices acknowledged from the intake inbox (Temporal was slower than the budget, "
    "or other notices were waiting)",
)
NOTICES_FORWARDED = Counter(
    "entrega_intake_forwarded_total", "Inbox notices handed off to Temporal by the forwarder"
)
OPERATOR_ACTIONS = Counter(
    "entrega_operator_actions_total", "Operator actions (retry, cancel, grant)", ["action"]
)

# Label values present from the first scrape, so dashboards and alerts see zeros, not gaps.
_API_ZEROS: list[tuple[Counter, Mapping[str, str]]] = [
    *(
        (WEBHOOK_OUTCOMES, {"provider": p, "result": r})
        for p in ("mercadopago", "appmax", "asaas")
        for r in ("accepted", "bad_signature", "replay", "unavailable")
    ),
    *((CREDITS_SPENT, {"source": s}) for s in ("monthly", "purchase")),
    (CREDITS_REFUSED, {"reason": "insufficient_credits"}),
]
for _metric, _labels in _API_ZEROS:
    _metric.labels(**_labels)


def api_metrics() -> tuple[bytes, str]:
    """The exposition text for `/metrics` and its content type; with PROMETHEUS_MULTIPROC_DIR,
    the sum over every API process that shares the directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- the worker ----------------------------------------------------------------------------------

STAGE_TRANSITIONS = "entrega_purchase_stage_transitions_total"
PROVISIONING_SECONDS = "entrega_purchase_provisioning_seconds"
RETRY_ROUNDS = "entrega_purchase_retry_rounds_total"
SAGA_OUTCOMES = "entrega_saga_outcomes_total"
COMPENSATIONS_PARKED = "entrega_saga_compensations_parked_total"
ORPHANS_FOUND = "entrega_reconcile_orphans_found_total"
RECOVERED = "entrega_reconcile_recovered_total"

WORKER_METRICS: dict[str, str] = {
    STAGE_TRANSITIONS: "Purchase stage transitions, by stage entered",
    RETRY_ROUNDS: "Provisioning retry rounds (an order parked in failed_at_user/failed_at_email)",
    SAGA_OUTCOMES: "Signup sagas finished, by level (1 registration, 2 first checkout, 3 later) "
    "and result (completed, rolled_back)",
    COMPENSATIONS_PARKED: "Saga compensations that exhausted their retries and wait for a person",
    ORPHANS_FOUND: "Orphans found by reconciliation, by kind",
    RECOVERED: "Payments whose webhook never arrived, handed off by reconciliation, by provider",
}
# Seconds from payment approved (the order entering `queued`) to credentials e-mail accepted.
_PROVISIONING_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200]


def worker_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving the SDK's metrics and Entrega's on `bind_address` (host:port).

    The runtime is per client: the worker connects its client with it. Durations are seconds."""
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                durations_as_seconds=True,
                histogram_bucket_overrides={PROVISIONING_SECONDS: _PROVISIONING_BUCKETS},
            )
        )
    )
    declare_worker_metrics(runtime.metric_meter)
    return runtime


def declare_worker_metrics(meter: MetricMeter) -> None:
    """Create Entrega's worker metrics at zero, so a fresh worker's scrape already names them."""
    meter.create_counter(STAGE_TRANSITIONS, WORKER_METRICS[STAGE_TRANSITIONS]).add(
        0, {"stage": "queued"}
    )
    meter.create_counter(RETRY_ROUNDS, WORKER_METRICS[RETRY_ROUNDS]).add(
        0, {"stage": "failed_at_user"}
    )
    meter.create_counter(SAGA_OUTCOMES, WORKER_METRICS[SAGA_OUTCOMES]).add(
        0, {"level": "1", "result": "rolled_back"}
    )
    meter.create_counter(COMPENSATIONS_PARKED, WORKER_METRICS[COMPENSATIONS_PARKED]).add(
        0, {"workflow_type": "RegistrationWorkflow"}
    )
    meter.create_counter(ORPHANS_FOUND, WORKER_METRICS[ORPHANS_FOUND]).add(
        0, {"kind": "auth_user_without_profile"}
    )
    meter.create_histogram_float(
        PROVISIONING_SECONDS,
        "Seconds from payment approved to credentials e-mail accepted",
        "s",
    )
