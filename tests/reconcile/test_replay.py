"""Committed histories of the reconciliation workflows replay against today's code: a change
that would break a run in flight (non-determinism) fails here first."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import converter_for_tests
from tests.reconcile.record_histories import SCENARIOS
from workflows.prune_signatures import PruneWebhookSignaturesWorkflow
from workflows.reconcile_asaas import ReconcileAsaasWorkflow
from workflows.reconcile_mercadopago import ReconcileMercadoPagoWorkflow
from workflows.reconcile_orphans import ReconcileOrphansWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
PATHS = [HISTORIES / f"{name}.json" for name in SCENARIOS]


def test_histories_are_committed() -> None:
    """Every reconciliation workflow type has a recorded history."""
    assert [p for p in PATHS if not p.exists()] == []


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
async def test_history_replays_cleanly(path: Path) -> None:
    """Replaying the recorded history makes exactly the recorded decisions."""
    replayer = Replayer(
        workflows=[
            ReconcileMercadoPagoWorkflow,
            ReconcileAsaasWorkflow,
            ReconcileOrphansWorkflow,
            PruneWebhookSignaturesWorkflow,
        ],
        data_converter=converter_for_tests(),
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
