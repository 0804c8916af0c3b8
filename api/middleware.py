"""ASGI middleware: a hard cap on request bodies and their JSON nesting, and Prometheus metrics
for every request."""

from __future__ import annotations

import json
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.validation import json_depth_exceeds
from contracts.errors import ErrorCode

REQUESTS = Counter(
    "entrega_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "entrega_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# No request Entrega reads nests deeper than a few levels; the parsers recurse, and a document
# nested 20,000 deep raised RecursionError (a 500) before any handler ran.
MAX_JSON_DEPTH = 32


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, whether announced by Content-Length or streamed,
    and bodies nesting arrays/objects deeper than `max_depth` with 400 `malformed_json`.

    Bodies are read up front (they are small by construction) and replayed to the app, so an
    oversized one is refused before any handler sees a byte of it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away; let the app see the disconnect below
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth_exceeds(body, self.max_depth):
            await self._send_error(
                send,
                400,
                error_body(
                    ErrorCode.MALFORMED_JSON,
                    {"max_depth": self.max_depth},
                    message="JSON aninhado demais",
                ),
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        await self._send_error(
            send,
            413,
            error_body(ErrorCode.PAYLOAD_TOO_LARGE, {"max_bytes": self.max_bytes}),
        )

    @staticmethod
    async def _send_error(send: Send, status: int, error: dict[str, object]) -> None:
        body = json.dumps(error).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Counts requests and their latency per route template (never per raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
