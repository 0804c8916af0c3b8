"""Payload keys rotate without downtime: add the new key FIRST in TEMPORAL_PAYLOAD_KEYS, and what
the old key wrote still replays and decodes; only once nothing needs the old key may it go."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer

from contracts.signups import RegistrationInput, RegistrationResult
from tests.conftest import TEST_SECRETS
from tests.sagas.conftest import registration_id
from workflows.checkout import CheckoutWorkflow
from workflows.client import data_converter
from workflows.codec import KEY_ID_METADATA, PayloadKeyError, new_payload_key, parse_payload_keys
from workflows.registration import RegistrationWorkflow

pytestmark = [pytest.mark.db, pytest.mark.temporal, pytest.mark.sandbox]

OLD = TEST_SECRETS["temporal_payload_keys"]  # what the suite's clients and workers write with
NEW = new_payload_key("test-2")


def test_keys_parse_with_clear_errors() -> None:
    """The first key encrypts; malformed entries are refused naming the key id, never the key."""
    keys = parse_payload_keys(f"{NEW}, {OLD}")
    assert [k.key_id for k in keys] == ["test-2", "test-1"]
    assert "ZW50" not in repr(keys)
    for text, error in [
        ("", "no key"),
        ("k1:not base64!", "'k1' is not valid base64"),
        ("k1:c2hvcnQ=", "'k1' has 5 bytes"),
        (f"{OLD},{OLD}", "'test-1' appears twice"),
        ("just-a-key", "not `key-id:base64-key`"),
    ]:
        with pytest.raises(PayloadKeyError, match=error):
            parse_payload_keys(text)


async def test_history_from_the_old_key_replays_and_decodes_after_rotation(
    stack, temporal_client
) -> None:
    """A registration written under test-1 replays and decodes with `test-2,test-1`; new
    payloads carry test-2; with test-1 removed the same history no longer replays."""
    await stack.registered(0)
    handle = temporal_client.get_workflow_handle(registration_id(0))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata[KEY_ID_METADATA] == b"test-1"

    rotated = data_converter(parse_payload_keys(f"{NEW},{OLD}"))
    replayed = await Replayer(
        workflows=[RegistrationWorkflow, CheckoutWorkflow], data_converter=rotated
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
    [decoded] = await rotated.decode(started.input.payloads, [RegistrationInput])
    assert decoded.email == "pessoa0@example.com"
    client = await Client.connect(
        temporal_client.service_client.config.target_host, data_converter=rotated
    )
    result = await client.get_workflow_handle(
        registration_id(0), result_type=RegistrationResult
    ).result()
    assert isinstance(result, RegistrationResult)
    assert rotated.payload_codec is not None
    [fresh] = await rotated.payload_codec.encode(started.input.payloads)
    assert fresh.metadata[KEY_ID_METADATA] == b"test-2"

    without_old = data_converter(parse_payload_keys(NEW))
    broken = await Replayer(
        workflows=[RegistrationWorkflow, CheckoutWorkflow], data_converter=without_old
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert broken.replay_failure is not None
    with pytest.raises(PayloadKeyError, match="'test-1'"):
        await without_old.decode(started.input.payloads, [RegistrationInput])
