"""Temporal keeps no personal data in plaintext: payloads and failure messages are encrypted, and
the scan that guards the whole suite (tests/privacy.py) would see a leak."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter

from contracts.signups import RegistrationInput
from tests.conftest import converter_for_tests
from tests.privacy import history_bytes, needles, scan_ids
from tests.sagas.conftest import person, registration_id, registration_input
from workflows.codec import ENCODING

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]


def _input(n: int = 0) -> RegistrationInput:
    return registration_input(person(n))


async def test_scan_sees_plaintext_and_not_ciphertext() -> None:
    """The same input is found by the scan when only JSON-encoded, and not once encrypted."""
    plain = await pydantic_data_converter.encode([_input()])
    sealed = await converter_for_tests().encode([_input()])
    looked_for = needles()
    assert [n for n in looked_for if n in plain[0].SerializeToString()]
    assert not [n for n in looked_for if n in sealed[0].SerializeToString()]
    assert sealed[0].metadata["encoding"] == ENCODING


async def test_signup_histories_hold_no_personal_data(stack) -> None:
    """A registration and its checkout leave Temporal nothing readable but ids and types."""
    body = await stack.registered(0)
    checkout = await stack.checkout(body["auth_user_id"])
    assert checkout.status_code == 201, checkout.text
    ids = [
        wf.id
        async for wf in stack.temporal.list_workflows(
            f"TaskQueue = '{stack.app.state.settings.temporal_task_queue}'"
        )
    ]
    assert registration_id(0) in ids and len(ids) == 2
    assert await scan_ids(stack.temporal, ids) == []


async def test_failure_messages_are_encrypted(stack) -> None:
    """A failing step's message is stored as "Encoded failure" (it may quote customer data), and
    the API, decoding it, still answers with the documented error."""
    await stack.sandbox.fault("supabase", "create_user", status=403, times=100)
    response = await stack.register(0)
    assert response.json()["error"]["code"] == "auth_failed"
    history = await stack.temporal.get_workflow_handle(registration_id(0)).fetch_history()
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ] + [
        e.workflow_execution_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    ]
    assert failures
    assert {f.message for f in failures} == {"Encoded failure"}
    assert all(f.encoded_attributes.metadata["encoding"] == ENCODING for f in failures)
    raw = await history_bytes(stack.temporal.get_workflow_handle(registration_id(0)))
    assert b"pessoa0" not in raw
