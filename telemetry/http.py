"""ASGI middleware for every HTTP request: the request id, the access line, webhook outcomes.

The request id is the caller's `X-Request-ID` when it is a sane token (≤ 128 characters of
letters, digits and `._:-`), else a new one; it is echoed on every response, set in
`logs.REQUEST_ID` for the request's log lines, and carried into Temporal by `telemetry.temporal`.
The access line names the route template (never the raw path or query: tokens and ids ride
there), the status and the duration.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from contracts.errors import ErrorCode
from telemetry import events
from telemetry.logs import REQUEST_ID

access_log = logging.getLogger("entrega.access")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Where an ApiError handler leaves the error code for this middleware (see api/errors.py).
ERROR_CODE_KEY = "entrega.error_code"
ERROR_DETAILS_KEY = "entrega.error_details"
_INTERNAL = "Erro interno. Tente novamente mais tarde."


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = str(value.decode("latin-1")).strip()
            if _SANE_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def webhook_result(status: int, body_status: str | None, code: str | None, details: object) -> str:
    """What became of a webhook delivery, from its answer."""
    if status < 300:
        return {"ignored": "ignored", "duplicate": "duplicate"}.get(body_status or "", "accepted")
    if status == 401:
        return "replay" if details == "signature already used" else "bad_signature"
    if status in (400, 413, 422):
        return "malformed"
    if status == 503:
        return "unavailable"
    return "error"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str = "api") -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        status_sent = False
        webhook_body = bytearray()

        async def tagged_send(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                status_sent = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and _is_webhook(scope):
                if len(webhook_body) < 4096:
                    webhook_body.extend(message.get("body", b"")[:4096])
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        except Exception:
            # Answered here rather than by Starlette's outermost handler, so that a 500 too
            # carries X-Request-ID; the error shape is the API's.
            logging.getLogger("entrega.api").exception("unexpected error on %s", _route(scope))
            if status_sent:
                raise
            body = json.dumps(error_body(ErrorCode.INTERNAL_ERROR)).encode()
            await tagged_send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await tagged_send({"type": "http.response.body", "body": body})
        finally:
            route = _route(scope)
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            access_log.info(
                "%s %s %s",
                scope.get("method", ""),
                route,
                status,
                extra={
                    "event": "access",
                    "method": scope.get("method", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
            if _is_webhook(scope):
                provider = route.split("/")[2] if route.count("/") >= 2 else "unknown"
                events.webhook(
                    provider,
                    webhook_result(
                        status,
                        _body_status(bytes(webhook_body)),
                        scope.get(ERROR_CODE_KEY),
                        scope.get(ERROR_DETAILS_KEY),
                    ),
                    status,
                    scope.get(ERROR_CODE_KEY),
                )
            REQUEST_ID.reset(token)


def _route(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", "unmatched"))


def _is_webhook(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/webhooks/")


def _body_status(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get("status") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None
