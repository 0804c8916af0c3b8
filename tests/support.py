"""Helpers shared by the tests: free ports, real HTTP servers and in-process clients for ASGI
apps."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def app_client(app: Any, *, timeout: float = 30) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTP client for the FastAPI `app` (base URL http://api), with its lifespan
    (start-up and shutdown) run around it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=timeout
        ) as client,
    ):
        yield client


async def cut_off(call: Awaitable[object]) -> None:
    """Start `call` (a request into a hanging dependency), check it is still waiting after 1.5 s,
    then cancel it: a request that dies mid-way (a crash, a client that went away)."""
    request = asyncio.ensure_future(call)
    await asyncio.sleep(1.5)
    assert not request.done()
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await request


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A local port that accepts connections and never answers (a hung dependency); every
    connection is closed on the way out."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open, unanswered

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` over real HTTP on a free loopback port in this event loop; yield its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raise the start-up error
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def user_token(secret: str, auth_user_id: str, *, email: str | None = None, ttl: int = 3600) -> str:
    """A Supabase-style access token (HS256, aud "authenticated") for `auth_user_id`."""
    import time

    import jwt

    now = int(time.time())
    claims = {"sub": auth_user_id, "aud": "authenticated", "role": "authenticated", "iat": now}
    claims["exp"] = now + ttl
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")


class SandboxHandle:
    """The sandbox's control API, as tests use it (docs/interfaces.md, "Provider sandbox")."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.http = httpx.AsyncClient(base_url=url, timeout=10)

    async def reset(self) -> None:
        """Forget all state and clear every fault."""
        (await self.http.delete("/_sandbox/state")).raise_for_status()
        (await self.http.delete("/_sandbox/faults")).raise_for_status()

    async def fault(self, service: str, operation: str = "*", **spec: object) -> str:
        """Inject a fault: status, times | rate, latency_ms, timeout. Returns its id."""
        response = await self.http.post(
            "/_sandbox/faults", json={"service": service, "operation": operation, **spec}
        )
        response.raise_for_status()
        fault_id: str = response.json()["id"]
        return fault_id

    async def clear_faults(self) -> None:
        (await self.http.delete("/_sandbox/faults")).raise_for_status()

    async def state(self) -> dict[str, list[dict[str, object]]]:
        response = await self.http.get("/_sandbox/state")
        response.raise_for_status()
        state: dict[str, list[dict[str, object]]] = response.json()
        return state

    async def set_gateway(self, gateway_url: str) -> None:
        """Where the sandbox sends webhooks (MP notifications, Apphooks, Asaas events)."""
        response = await self.http.put("/_sandbox/config", json={"gateway_url": gateway_url})
        response.raise_for_status()


@asynccontextmanager
async def recording_env(data_converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    """The pip-installed time-skipping test server a history recorder runs its scenarios on,
    with Entrega's search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=data_converter,
    )
    try:
        await register_on_test_server(env.client)
        yield env
    finally:
        await env.shutdown()


async def register_on_test_server(client: Client) -> None:
    """Add Entrega's search attributes to a time-skipping server (idempotent).

    The Java test server implements AddSearchAttributes but not List, so this adds them blindly.
    """
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type)
                    for key in search_attributes.ALL
                },
            )
        )
    except RPCError:
        pass  # already registered
