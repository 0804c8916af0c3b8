"""The storm's invariant 6 can fail: its scanner finds a planted password, CPF, phone, e-mail or
name in a Temporal history written without the codec, and nothing once the codec encrypts it."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.chaos import DOMAIN, LAST_NAME, SIGNUP_NAME, Needles, scan_temporal
from tests.conftest import converter_for_tests
from tests.privacy import LEGACY_RUNS

CPF, PHONE, PASSWORD = "52998224725", "+5511912345678", "q7Vx_3kPz-Lm9aQe"
PERSON = {"name": "Assinante 7", "cpfCnpj": CPF, "phone": PHONE, "email": "a7-1@example.com"}


def personal() -> Needles:
    return Needles({CPF, PHONE}, literals=(DOMAIN, LAST_NAME, SIGNUP_NAME))


def test_needles_find_values_and_literals() -> None:
    secrets = Needles({PASSWORD, "short"})
    assert secrets.find(b'{"password":"' + PASSWORD.encode() + b'"}') == 1
    # A protobuf length byte that happens to be printable sticks to the string before it.
    assert secrets.find(b"\x0a*" + PASSWORD.encode() + b"\x12") == 1
    assert secrets.find(b"short and nothing else") == 0  # under 8 characters: left out
    assert personal().find(f"Cliente {LAST_NAME} {CPF}".encode()) == 2
    assert personal().find(b"ciphertext only") == 0


@pytest.mark.temporal
async def test_scan_finds_plaintext_history_and_not_encrypted_one(temporal_client) -> None:
    target = temporal_client.service_client.config.target_host
    plain = await Client.connect(target, data_converter=pydantic_data_converter)
    sealed = await Client.connect(target, data_converter=converter_for_tests())
    ids = {name: f"storm-scan-probe-{name}-{uuid.uuid4().hex[:8]}" for name in ("plain", "sealed")}
    # Left alone by the session's own scan, which would otherwise (rightly) fail the suite.
    LEGACY_RUNS.update(ids.values())
    handles = [
        await client.start_workflow(
            "NoSuchWorkflow",
            {**PERSON, "password": PASSWORD},
            id=ids[name],
            task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        )
        for client, name in ((plain, "plain"), (sealed, "sealed"))
    ]
    try:
        found = [
            await scan_temporal(temporal_client, Needles({PASSWORD}), personal(), query)
            for query in (f"WorkflowId = '{ids['plain']}'", f"WorkflowId = '{ids['sealed']}'")
        ]
    finally:
        for handle in handles:
            await handle.terminate()
    assert found[0] == [
        f"6 {ids['plain']}: 1 password(s) or token(s) in plaintext in Temporal",
        f"6 {ids['plain']}: 4 personal data in plaintext in Temporal",
    ]
    assert found[1] == []
