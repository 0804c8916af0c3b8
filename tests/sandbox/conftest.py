"""Fixtures for the sandbox's own tests: the production clients with a short timeout, and a
gateway that records what the sandbox delivers to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from providers.clients import ProviderClients, open_provider_clients
from tests.conftest import make_settings, sandbox_urls
from tests.support import SandboxHandle, serve

CLIENT_TIMEOUT_SECONDS = 1.0


@pytest.fixture
async def clients(sandbox: SandboxHandle) -> AsyncIterator[ProviderClients]:
    """The production clients pointed at the sandbox, giving up after one second."""
    settings = make_settings(
        **sandbox_urls(sandbox.url), http_timeout_seconds=CLIENT_TIMEOUT_SECONDS
    )
    async with open_provider_clients(settings) as opened:
        yield opened


@dataclass
class Delivery:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Gateway:
    """A stand-in for Entrega's webhook gateway: records requests, answers `status`."""

    url: str = ""
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)


@pytest.fixture
async def gateway(sandbox: SandboxHandle) -> AsyncIterator[Gateway]:
    """A recording gateway on a free port, set as the sandbox's webhook target."""
    recorder = Gateway()
    app = FastAPI()

    @app.post("/webhooks/{source}")
    async def receive(source: str, request: Request) -> Response:
        recorder.deliveries.append(
            Delivery(
                path=request.url.path,
                query=dict(request.query_params),
                headers=dict(request.headers),
                body=await request.body(),
            )
        )
        return Response(b'{"ok": true}', status_code=recorder.status)

    async with serve(app) as url:
        recorder.url = url
        await sandbox.set_gateway(url)
        yield recorder


def json_of(delivery: Delivery) -> Any:
    return json.loads(delivery.body)
