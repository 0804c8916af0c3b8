"""Committed histories replay against today's workflow code: a non-deterministic change fails CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import converter_for_tests
from workflows.purchase import PurchaseWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("purchase_*.json"))


def test_histories_are_committed() -> None:
    """The replay suite has its histories: completed, retried, pending then refunded, AppMax,
    and AppMax paid after its refund (patch purchases-refund-final), and the catalogue's match
    (matched, parked then retried, AppMax parked then refunded), and both patches together
    (paid after refund with a refused price; the same with the refund patch decided in a later
    workflow task after a slow write), and the lean path of issue 15 (patch purchases-lean-path:
    completed, retried, parked by the catalogue then retried, pending then refunded, AppMax paid
    after its refund)."""
    assert {p.stem for p in HISTORIES} >= {
        "purchase_completed",
        "purchase_retried_after_failures",
        "purchase_pending_then_refunded",
        "purchase_appmax_paid_then_refunded",
        "purchase_appmax_paid_after_refund",
        "purchase_catalogue_matched",
        "purchase_catalogue_mismatch_then_retried",
        "purchase_appmax_catalogue_mismatch_refunded",
        "purchase_completed_with_stage_since",
        "purchase_cancelled_by_operator",
        "purchase_appmax_paid_after_refund_mismatched",
        "purchase_appmax_paid_after_refund_slow_write",
        "purchase_lean_completed",
        "purchase_lean_retried_after_failures",
        "purchase_lean_catalogue_mismatch_then_retried",
        "purchase_lean_pending_then_refunded",
        "purchase_lean_appmax_paid_after_refund",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_cleanly(path: Path) -> None:
    """Replaying the recorded history makes exactly the recorded decisions."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[PurchaseWorkflow], data_converter=converter_for_tests())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
