"""Fixtures for the provider clients: scripted HTTP (httpx.MockTransport) and the real sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from providers.clients import ProviderClients, open_provider_clients
from tests.conftest import make_settings, sandbox_urls
from tests.support import SandboxHandle

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport that answers with queued responses (or raises queued exceptions) and
    records every request it saw."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: list[httpx.Response | Exception | Handler] = []

    def answer(self, status: int = 200, json: Any = None, **kwargs: Any) -> Script:
        self._answers.append(httpx.Response(status, json=json, **kwargs))
        return self

    def fail(self, exc: Exception) -> Script:
        self._answers.append(exc)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self._answers, f"unexpected request {request.method} {request.url}"
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def client(self, base_url: str = "https://provider.test") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle), base_url=base_url)


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    yield Script()


@pytest.fixture
async def providers(sandbox: SandboxHandle) -> AsyncIterator[ProviderClients]:
    """The production clients, pointed at the (reset) sandbox over real HTTP."""
    settings = make_settings(**sandbox_urls(sandbox.url))
    async with open_provider_clients(settings) as clients:
        yield clients
