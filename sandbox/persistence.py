"""The sandbox's state on disk, so `entrega dev` can restart without orphaning its own data.

PostgreSQL keeps its data across `make dev` runs; a sandbox that forgot its users would leave
every profile pointing at an auth user that no longer exists. So the `entrega sandbox` process
keeps its state in `<ENTREGA_HOME>/sandbox-state.json`: loaded at start, written shortly after
each change and on shutdown (a SIGKILL loses at most the last `FLUSH_SECONDS`). Faults are not
kept: they belong to the run that set them. Apps built without a state file (tests) stay purely
in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.core import Sandbox, State

FORMAT_VERSION = 1
FLUSH_SECONDS = 0.5
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

    async def flush() -> None:
        if sandbox.changed:
            sandbox.changed = False
            # Serialized here, on the loop, so no handler changes it half-way; written off it.
            await asyncio.to_thread(save, path, serialize(sandbox.state))

    stopping = asyncio.Event()

    async def keep() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), FLUSH_SECONDS)
            try:
                await flush()
            except OSError as exc:
                sandbox.changed = True  # try again next time
                log.warning("could not write sandbox state to %s: %s", path, exc)

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        # Let a write in progress finish (never cancel it half-way), then write the last word.
        stopping.set()
        await keeper
        save(path, serialize(sandbox.state))
