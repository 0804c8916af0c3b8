"""Committed histories of the signup sagas still replay: a change to the workflow code that would
break running sagas (non-determinism) fails here first. Regenerate only on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import converter_for_tests
from workflows.asaas_payment import AsaasPaymentWorkflow
from workflows.checkout import CheckoutWorkflow
from workflows.registration import RegistrationWorkflow

HISTORIES = sorted(
    path
    for path in (Path(__file__).parent.parent / "histories").glob("*.json")
    if path.name.startswith(("registration_", "checkout_", "asaas_payment_"))
)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    """The current signup and Asaas payment workflow code replays this recorded history."""
    replayer = Replayer(
        workflows=[RegistrationWorkflow, CheckoutWorkflow, AsaasPaymentWorkflow],
        data_converter=converter_for_tests(),
    )
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


def test_histories_are_present() -> None:
    """Every outcome of both sagas has a recorded history (the list cannot silently empty)."""
    assert {p.stem for p in HISTORIES} >= {
        "registration_completed",
        "registration_rolled_back",
        "checkout_first_completed",
        "checkout_first_rolled_back",
        "checkout_later_rolled_back",
        "checkout_later_replaced",
        # Recorded before a later checkout deleted the subscription it replaces: sagas started
        # then must still replay (workflow.patched).
        "checkout_later_completed_before_replacing",
        # The Asaas payment workflow (tests/sagas/record_histories.py), also with an event that
        # arrived while the payment was being applied (applied once more).
        "asaas_payment_applied",
        "asaas_payment_event_during_apply",
        # Answered by the `outcome` update (record_answer_histories.py, patch
        # signups-answer-early): at once, and rollback_pending on a failed first undo attempt.
        "registration_answered_completed",
        "registration_answered_rollback_pending",
        "checkout_first_answered_completed",
        "checkout_first_answered_rollback_pending",
    }
