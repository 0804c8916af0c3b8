"""The scan for personal data in Temporal: every history the suite produced, read RAW (no codec),
must hold no CPF, e-mail, phone, name, password or token of the tests in plaintext.

The dev server's histories are scanned when the session ends, and a time-skipping server's when
its test ends (tests/conftest.py), so a new flow that leaks fails the suite without a test of its
own; tests/codec/test_history_privacy.py proves the
scan itself finds a leak."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)

# Only long literals: ciphertext is random bytes, and a short pattern would match it by chance.
_CPFS = ["52998224725", "11144477735", "39053344705", "15350946056", "71428793860"]
PII_NEEDLES: tuple[bytes, ...] = (
    # e-mail domains the tests and the sandbox use
    b"@example.com",
    b"@example.org",
    b"@x.com",
    # CPFs of the tests, bare and formatted
    *(cpf.encode() for cpf in _CPFS),
    *(f"{c[:3]}.{c[3:6]}.{c[6:9]}-{c[9:]}".encode() for c in _CPFS),
    # phones and names of tests/sagas/conftest.person() and the purchase tests
    b"+55119876543",
    b"98765-4321",
    b"Pessoa ",
    b"Souza",
    b"Kill Test",
    # passwords and tokens
    b"segredo123",
    b"Bearer ",
)


# Runs a test starts on purpose under the legacy `registration:<e-mail>` id (as runs from before
# the hashed ids were), to prove they keep working; the scan leaves exactly these alone.
LEGACY_RUNS: set[str] = set()


def needles(extra: Iterable[str] = ()) -> list[bytes]:
    """The literal values to look for, with the test settings' secrets and `extra` values."""
    from tests.conftest import TEST_SECRETS

    return [
        *PII_NEEDLES,
        *(v.encode() for v in TEST_SECRETS.values()),
        *(e.encode() for e in extra),
    ]


async def history_bytes(handle: WorkflowHandle[object, object]) -> bytes:
    """A run's whole history as the server stores it: protobuf bytes, payloads as written."""
    history = await handle.fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


def findings(where: str, raw: bytes, looked_for: Iterable[bytes]) -> list[str]:
    return [f"{where}: {n.decode(errors='replace')!r} in plaintext" for n in looked_for if n in raw]


async def scan_server(client: Client, extra: Iterable[str] = ()) -> list[str]:
    """Every workflow run on a dev server (ids, search attributes, memos and histories)."""
    looked_for = needles(extra)
    found: list[str] = []
    async for wf in client.list_workflows():
        if wf.id in LEGACY_RUNS:
            continue
        found += findings(f"{wf.id} (visibility)", wf.raw_info.SerializeToString(), looked_for)
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        found += findings(wf.id, await history_bytes(handle), looked_for)
    return found


async def scan_ids(client: Client, workflow_ids: Iterable[str]) -> list[str]:
    """The latest run of each id (for the time-skipping server, which cannot list workflows)."""
    looked_for = needles()
    found: list[str] = []
    for workflow_id in sorted(set(workflow_ids)):
        found += findings(workflow_id, workflow_id.encode(), looked_for)
        handle = client.get_workflow_handle(workflow_id)
        found += findings(workflow_id, await history_bytes(handle), looked_for)
    return found


class RecordStartedWorkflows(Interceptor):
    """A client interceptor remembering the id of every workflow the client starts."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Recording(next, self.ids)


class _Recording(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, ids: set[str]) -> None:
        super().__init__(next)
        self._ids = ids

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[object, object]:
        self._ids.add(input.id)
        return await super().start_workflow(input)
