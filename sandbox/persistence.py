"""The sandbox's state on disk, so `entrega dev` can restart without orphaning its own data.

PostgreSQL keeps its data across `make dev` runs; a sandbox that forgot its users would leave
every profile pointing at an auth user that no longer exists. So the `entrega sandbox` process
keeps its state in `<ENTREGA_HOME>/sandbox-state.json`: loaded at start, written shortly after
each change and on shutdown. Faults are not kept: they belong to the run that set them. Apps
built without a state file (tests) stay purely in memory.

Each write serializes the whole state, so its cost grows with the state (about 0.1 s of CPU for
the 10 MB a benchmark's few thousand orders leave). Writes are spaced so that keeping the state
takes at most `CPU_SHARE` of the time: every `FLUSH_SECONDS` while the state is small, less
often as it grows, and never less often than every `MAX_PAUSE_SECONDS` (a write slowed by a busy
disk must not stretch the next pause to minutes). A SIGKILL loses at most the changes since the
last write: half a second for a developer's state, a few seconds for a benchmark's, whose sandbox
would otherwise spend a growing share of the cores it shares with the stack it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.core import Sandbox, State

FORMAT_VERSION = 1
FLUSH_SECONDS = 0.5
CPU_SHARE = 0.02
MAX_PAUSE_SECONDS = 10.0
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger(__name__)


def load(path: Path) -> State | None:
    """The saved state, or None when there is none. An unreadable file is moved aside (to
    `<name>.bad`, for a person to look at) and the sandbox starts empty, with a warning."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        saved = json.loads(text)
        if saved.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown format version {saved.get('version')!r}")
        return State.restore(saved["state"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        log.warning("sandbox state %s unreadable (%s); moved to %s, starting empty", path, exc, bad)
        return None


def save(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a reader (or a crash) sees the old file or the new
    one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def serialize(state: State) -> str:
    payload: dict[str, Any] = {"version": FORMAT_VERSION, "state": state.dump()}
    return json.dumps(payload, ensure_ascii=False)


class MarkChanges:
    """ASGI middleware noting that the state may have changed: after any request that is not a
    read, once it has finished (a handler may change state after an await)."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
                self.sandbox.changed = True


@asynccontextmanager
async def persisted(sandbox: Sandbox, path: Path) -> AsyncIterator[None]:
    """Load the state from `path`, write it back after changes, and once more on the way out."""
    loaded = load(path)
    if loaded is not None:
        sandbox.state = loaded

    async def flush() -> float:
        """Write the state if it changed; answers how long that took (0 when it did not)."""
        if not sandbox.changed:
            return 0.0
        sandbox.changed = False
        started = time.perf_counter()
        # Serialized here, on the loop, so no handler changes it half-way; written off it.
        await asyncio.to_thread(save, path, serialize(sandbox.state))
        return time.perf_counter() - started

    stopping = asyncio.Event()

    async def keep() -> None:
        pause = FLUSH_SECONDS
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), pause)
            try:
                if spent := await flush():
                    pause = min(max(FLUSH_SECONDS, spent / CPU_SHARE), MAX_PAUSE_SECONDS)
            except Exception as exc:  # a full disk, or a state that will not serialize
                sandbox.changed = True  # try again next time (and once more on the way out)
                log.warning("could not write sandbox state to %s: %s", path, exc)

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        # Let a write in progress finish (never cancel it half-way): woken, the keeper writes
        # what changed since its last write; a write that failed there is tried once more.
        stopping.set()
        await keeper
        if sandbox.changed:
            save(path, serialize(sandbox.state))
