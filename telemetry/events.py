"""The moments an operator greps for, each one log line (and its metric where there is one).

`event=` names them: stage_changed, retry_round, compensated, saga_parked, webhook_refused,
spend_refused, orphans_found, operator_action. Lines carry ids, never personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from temporalio import activity

from telemetry import metrics

log = logging.getLogger("entrega.events")


def _emit(level: int, event: str, message: str, **fields: Any) -> None:
    """From inside an activity through `activity.logger` (workflow id, run id, attempt)."""
    extra = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    if activity.in_activity():
        activity.logger.log(level, message, extra=extra)
    else:
        log.log(level, message, extra=extra)


def _count(name: str, value: int | float, attributes: dict[str, str]) -> None:
    """Add to one of the worker's metrics through the activity's metric meter."""
    if not activity.in_activity():
        return
    meter = activity.metric_meter()
    if name == metrics.PROVISIONING_SECONDS:
        meter.create_histogram_float(name, "", "s").record(float(value), attributes)
    else:
        meter.create_counter(name, metrics.WORKER_METRICS[name]).add(int(value), attributes)


# --- purchases (worker) --------------------------------------------------------------------------


def stage_changed(
    order_id: str,
    stage: str,
    *,
    applied: bool,
    attempts: int,
    error: str | None,
    provisioning_seconds: float | None = None,
) -> None:
    """An order entered `stage` (or a late duplicate run was kept from moving it)."""
    if not applied:
        _emit(logging.INFO, "stage_kept", f"order kept its stage, not {stage}", order_id=order_id)
        return
    _count(metrics.STAGE_TRANSITIONS, 1, {"stage": stage})
    level = logging.WARNING if stage.startswith("failed") else logging.INFO
    _emit(
        level,
        "stage_changed",
        f"order entered {stage}",
        order_id=order_id,
        stage=stage,
        attempts=attempts,
        error=error,
    )
    if stage.startswith("failed_at_"):
        _count(metrics.RETRY_ROUNDS, 1, {"stage": stage})
        _emit(
            logging.WARNING,
            "retry_round",
            f"provisioning retry round {attempts} parked in {stage}",
            order_id=order_id,
            stage=stage,
            attempts=attempts,
            error=error,
        )
    if provisioning_seconds is not None:
        _count(metrics.PROVISIONING_SECONDS, provisioning_seconds, {})


# --- signup sagas (worker) -----------------------------------------------------------------------


def saga_journal(
    workflow_id: str, event: str, stage: str | None, step: str | None, error: str | None
) -> None:
    """A saga's journal line: compensations, and the parked ones."""
    if event == "compensated":
        _emit(logging.INFO, "compensated", f"compensated {step}", step=step, stage=stage)
    elif event == "compensation_failed":
        workflow_type = (
            "CheckoutWorkflow" if workflow_id.startswith("checkout:") else ("RegistrationWorkflow")
        )
        _count(metrics.COMPENSATIONS_PARKED, 1, {"workflow_type": workflow_type})
        _emit(
            logging.ERROR,
            "saga_parked",
            f"compensation {step} failed for good; saga parked until `entrega sagas retry`",
            step=step,
            error=error,
        )
    elif event == "step_failed":
        _emit(logging.WARNING, "step_failed", f"saga step {step} failed", step=step, error=error)


def orphans_found(kinds: Sequence[str]) -> None:
    """What reconciliation found (one line per run; one metric per kind)."""
    by_kind: dict[str, int] = {}
    for kind in kinds:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    for kind, n in by_kind.items():
        _count(metrics.ORPHANS_FOUND, n, {"kind": kind})
    level = logging.WARNING if kinds else logging.INFO
    _emit(level, "orphans_found", f"reconciliation found {len(kinds)} orphan(s)", **by_kind)


def recovered_by_reconcile(provider: str) -> None:
    """A payment the provider's webhook never delivered, handed off by reconciliation."""
    _count(metrics.RECOVERED, 1, {"provider": provider})


# --- the API -------------------------------------------------------------------------------------


def webhook(provider: str, result: str, status: int, code: str | None) -> None:
    metrics.WEBHOOK_OUTCOMES.labels(provider, result).inc()
    if status >= 300:
        _emit(
            logging.WARNING,
            "webhook_refused",
            f"{provider} webhook refused: {result}",
            provider=provider,
            result=result,
            status=status,
            code=code,
        )


def credit_spent(source: str, profile_id: str) -> None:
    metrics.CREDITS_SPENT.labels(source).inc()


def spend_refused(reason: str, profile_id: str | None) -> None:
    metrics.CREDITS_REFUSED.labels(reason).inc()
    _emit(
        logging.WARNING,
        "spend_refused",
        f"shipment refused: {reason}",
        reason=reason,
        profile_id=profile_id,
    )


def operator_action(action: str, actor: str, target: str, reason: str | None) -> None:
    metrics.OPERATOR_ACTIONS.labels(action).inc()
    _emit(
        logging.INFO,
        "operator_action",
        f"{actor} {action} {target}",
        action=action,
        actor=actor,
        target=target,
        reason=reason,
    )
