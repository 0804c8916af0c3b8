"""With a state file the sandbox outlives its process (as under `entrega dev`); without, it stays
in memory (as in tests)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from providers.clients import ProviderClients, open_provider_clients
from providers.errors import ConflictError
from sandbox import persistence
from sandbox.app import create_app
from sandbox.core import Sandbox, State
from sandbox.persistence import FLUSH_SECONDS
from tests.conftest import make_settings, sandbox_urls
from tests.providers.calls import MESSAGE
from tests.support import serve

pytestmark = pytest.mark.sandbox

# Webhooks fired here go nowhere (connection refused at once), never to a real gateway.
NOWHERE = "http://127.0.0.1:1"


@asynccontextmanager
async def running(
    state_file: Path | None, home: Path | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, ProviderClients]]:
    """A sandbox process-alike on a free port, with its control client and provider clients."""
    home_setting = {"entrega_home": home} if home else {}
    settings = make_settings(sandbox_gateway_url=NOWHERE, **home_setting)
    async with serve(create_app(settings, state_file=state_file)) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as control,
            open_provider_clients(make_settings(**sandbox_urls(url))) as clients,
        ):
            yield control, clients


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    """After a restart users can still sign in, duplicates are still refused and idempotency
    keys still answer the first result; faults are not carried over."""
    state_file = tmp_path / "sandbox-state.json"
    async with running(state_file) as (control, clients):
        await clients.supabase.create_user("ana@x.com", None, "s3cret-pass")
        await clients.lovable.create_user("ana@x.com", "pw-123456", "Ana", "o1", "lov-key")
        email_id = await clients.resend.send_email(MESSAGE, "mail-key")
        await clients.asaas.create_customer("Ana", "52998224725", "ana@x.com", None, "p1")
        payment = await control.post(
            "/_sandbox/mercadopago/payments", json={"payer_email": "ana@x.com", "amount": "10"}
        )
        await control.post(f"/_sandbox/mercadopago/payments/{payment.json()['id']}/notify")
        await control.post("/_sandbox/appmax/orders", json={"event": "OrderPaid"})
        await control.post("/_sandbox/faults", json={"service": "supabase", "status": 500})
        before = (await control.get("/_sandbox/state")).json()

    async with running(state_file) as (control, clients):
        assert (await control.get("/_sandbox/state")).json() == before
        assert (await control.get("/_sandbox/faults")).json() == []
        assert await clients.supabase.sign_in_with_password("ana@x.com", "s3cret-pass")
        with pytest.raises(ConflictError) as duplicate:
            await clients.supabase.create_user("ana@x.com", None, "other-pass")
        assert duplicate.value.code == "email_exists"
        assert await clients.resend.send_email(MESSAGE, "mail-key") == email_id
        again = await clients.lovable.create_user("ana@x.com", "pw-123456", "Ana", "o1", "lov-key")
        assert again.created  # the first answer, replayed for the same key


async def test_changes_reach_the_file_while_running(tmp_path: Path) -> None:
    """A change is on disk within moments, so a killed sandbox (no shutdown) loses little."""
    state_file = tmp_path / "sandbox-state.json"
    async with running(state_file) as (_, clients):
        user = await clients.supabase.create_user("bia@x.com", None, "s3cret-pass")
        for _ in range(20):
            await asyncio.sleep(FLUSH_SECONDS / 2)
            if state_file.exists() and user.id in state_file.read_text():
                break
        else:
            pytest.fail("the new user never reached the state file")
        assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left behind


async def test_without_a_state_file_nothing_is_written(tmp_path: Path) -> None:
    """A sandbox built without a state file (as tests build it) keeps everything in memory."""
    async with running(None, home=tmp_path) as (_, clients):
        await clients.supabase.create_user("cid@x.com", None, "s3cret-pass")
        await asyncio.sleep(FLUSH_SECONDS * 2)
    assert list(tmp_path.iterdir()) == []


async def test_an_unreadable_file_is_moved_aside(tmp_path: Path) -> None:
    """A corrupt state file does not stop the sandbox: it starts empty and keeps the file."""
    state_file = tmp_path / "sandbox-state.json"
    state_file.write_text("{not json")
    async with running(state_file) as (control, _):
        assert not any((await control.get("/_sandbox/state")).json().values())
    assert (tmp_path / "sandbox-state.json.bad").read_text() == "{not json"


def test_dump_and_restore_keep_every_field() -> None:
    """Sets, integer keys and tuples come back as they were after a trip through JSON."""
    state = State(
        mp_notified={"123"},
        appmax_orders={42: {"id": 42}},
        lovable_idempotency={"k": ("fp", 201, {"user_id": "u"})},
        resend_idempotency={
            "done": {"fingerprint": "f", "response": {"id": "e"}, "expires": 1e12},
            "in-flight": {"fingerprint": "f", "response": None, "expires": 1e12},
        },
        auth_passwords={"u": "pw"},
    )
    restored = State.restore(json.loads(json.dumps(state.dump())))
    assert restored == State(
        mp_notified={"123"},
        appmax_orders={42: {"id": 42}},
        lovable_idempotency={"k": ("fp", 201, {"user_id": "u"})},
        resend_idempotency={"done": {"fingerprint": "f", "response": {"id": "e"}, "expires": 1e12}},
        auth_passwords={"u": "pw"},
    )


async def writes_under_constant_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """Change the state every 50 ms for 1.8 s while each write takes 0.1 s: how many writes
    happened during that time, and how many in all once the sandbox has stopped."""
    written = 0
    real_serialize = persistence.serialize

    def slow_serialize(state: State) -> str:
        nonlocal written
        written += 1
        time.sleep(0.1)
        return real_serialize(state)

    monkeypatch.setattr(persistence, "serialize", slow_serialize)
    sandbox = Sandbox(make_settings())
    async with persistence.persisted(sandbox, tmp_path / "sandbox-state.json"):
        for _ in range(36):
            sandbox.changed = True
            await asyncio.sleep(0.05)
        during = written
    return during, written


async def test_writing_a_large_state_is_spaced_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state that takes long to write is written less often: a benchmark's 10 MB state took
    0.1 s of CPU every half second, a growing share of the cores the stack it measured shared.
    Here a write takes 0.1 s, so under constant change it is written once in 1.8 s, not 3 times."""
    during, written = await writes_under_constant_change(tmp_path, monkeypatch)
    assert during == 1
    assert written == 2  # the last word on the way out, at once


async def test_the_pause_between_writes_is_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slow write (a busy disk) must not stretch the next pause to minutes: with the cap at
    0.6 s, a write that takes 0.1 s (a 5 s pause uncapped) is written again within 1.8 s."""
    monkeypatch.setattr(persistence, "MAX_PAUSE_SECONDS", 0.6)
    during, _ = await writes_under_constant_change(tmp_path, monkeypatch)
    assert during >= 2
