"""The sandbox's shared pieces: in-memory state, the fault store, and the early-reply exception.

State lives on the server's single event loop. Handlers read and change it without awaiting in
between, so concurrent requests never see a half-made change; where a provider really has a
window (Resend's in-flight idempotency key), the handler marks it explicitly."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import Failure, FaultStore
from sandbox.rate_limits import RateLimits
from settings import Settings

BRASILIA = ZoneInfo("America/Sao_Paulo")

ErrorBody = Callable[[int, str, str], dict[str, Any]]


class Reply(Exception):
    """Answer this response now (credential failures, faults, validation errors)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = JSONResponse(body, status_code=status, headers=headers)


def brasilia_today() -> date:
    """Today's calendar day in Brasília: Asaas dates customers and charges by it, so from 21:00
    to midnight there it is already tomorrow in UTC and still today for Asaas."""
    return datetime.now(BRASILIA).date()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def digits(size: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(size))


def new_uuid() -> str:
    return str(uuid.uuid4())


async def json_body(request: Request, error: ErrorBody) -> dict[str, Any]:
    """The request's JSON object, or a 400 in the provider's own error shape."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise Reply(400, error(400, "invalid_json", "The request body is not valid JSON")) from None
    if not isinstance(body, dict):
        raise Reply(400, error(400, "invalid_json", "The request body must be a JSON object"))
    return body


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class State:
    """Everything the emulated providers remember; `DELETE /_sandbox/state` starts it afresh."""

    auth_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth_passwords: dict[str, str] = field(default_factory=dict)  # user id -> password
    lovable_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    lovable_passwords: dict[str, str] = field(default_factory=dict)
    lovable_idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    resend_idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    resend_batch_idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    asaas_customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    asaas_subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    asaas_payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    mp_payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    mp_notified: set[str] = field(default_factory=set)
    appmax_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """What `GET /_sandbox/state` shows (never the passwords)."""
        return {
            "auth_users": list(self.auth_users.values()),
            "lovable_users": list(self.lovable_users.values()),
            "emails": list(self.emails),
            "asaas_customers": list(self.asaas_customers.values()),
            "asaas_subscriptions": list(self.asaas_subscriptions.values()),
            "asaas_payments": list(self.asaas_payments.values()),
            "mp_payments": list(self.mp_payments.values()),
            "webhooks": list(self.webhooks),
        }

    def dump(self) -> dict[str, Any]:
        """Everything, passwords and keys included, as JSON-ready data (for the state file)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["mp_notified"] = sorted(self.mp_notified)
        data["appmax_orders"] = {str(k): v for k, v in self.appmax_orders.items()}
        # A request still in flight dies with the process; its key must be free afterwards.
        for name in ("resend_idempotency", "resend_batch_idempotency"):
            data[name] = {k: v for k, v in getattr(self, name).items() if v["response"] is not None}
        return data

    @classmethod
    def restore(cls, data: dict[str, Any]) -> State:
        """The state `dump` described (fields it lacks start empty)."""
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.mp_notified = set(state.mp_notified)
        state.appmax_orders = {int(k): v for k, v in state.appmax_orders.items()}
        state.lovable_idempotency = {
            k: (fingerprint, int(status), answer)
            for k, (fingerprint, status, answer) in state.lovable_idempotency.items()
        }
        return state


class Sandbox:
    """One sandbox server's world: settings (the secrets it checks), state, faults, config."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State()
        self.faults = FaultStore()
        self.rate_limits = RateLimits()
        self.gateway_url = settings.gateway_url
        self.changed = False  # set after requests that may change state (see persistence)
        self._webhook_http: httpx.AsyncClient | None = None

    def reset(self) -> None:
        """Everything afresh: records, idempotency keys, faults (hanging requests let go), and
        the default gateway."""
        self.state = State()
        self.faults.clear()
        self.rate_limits.clear()
        self.gateway_url = self.settings.gateway_url

    @property
    def webhook_http(self) -> httpx.AsyncClient:
        """The client that delivers the webhooks the control API fires (opened on first use)."""
        if self._webhook_http is None:
            self._webhook_http = httpx.AsyncClient()
        return self._webhook_http

    async def close(self) -> None:
        if self._webhook_http is not None:
            await self._webhook_http.aclose()
            self._webhook_http = None

    def secret(self, name: str) -> str:
        return self.settings.secret(name)

    async def fault(self, service: str, operation: str, request: Request, error: ErrorBody) -> None:
        """Raise the reply a fault asks for, after its latency; return to answer normally.

        A rate limit over its budget answers 429 first. Faults with `after_effect` are left for
        `AfterEffects`, which runs them once the operation has answered successfully."""
        if (limited := self.rate_limits.check(service, operation)) is not None:
            message = f"Too many requests: the sandbox's rate limit; retry after {limited} s"
            headers = {"Retry-After": str(limited), "RateLimit-Reset": str(limited)}
            raise Reply(429, error(429, "rate_limit_exceeded", message), headers)
        request.scope[_PENDING] = _Pending(service, operation, error)
        failure = await self.faults.apply(service, operation, request)
        if failure is not None:
            raise failure_reply(failure, error)

    def on_lost_answer(self, request: Request, forget: Callable[[], object]) -> None:
        """What the service forgets when an `after_effect` fault loses this request's answer
        (its memory of the request's idempotency key)."""
        pending = request.scope.get(_PENDING)
        if isinstance(pending, _Pending):
            pending.forget.append(forget)


def failure_reply(failure: Failure, error: ErrorBody) -> Reply:
    code = failure.code or _DEFAULT_CODES.get(failure.status, "sandbox_fault")
    message = failure.message or f"Injected fault: HTTP {failure.status}"
    headers = {}
    if failure.status == 429 or failure.retry_after is not None:
        wait = str(failure.retry_after if failure.retry_after is not None else 1)
        headers = {"Retry-After": wait, "RateLimit-Reset": wait}
    return Reply(failure.status, error(failure.status, code, message), headers)


_PENDING = "sandbox.fault"


@dataclass
class _Pending:
    """The emulated operation a request ran, for its `after_effect` faults."""

    service: str
    operation: str
    error: ErrorBody
    forget: list[Callable[[], object]] = field(default_factory=list)


class AfterEffects:
    """ASGI middleware for `after_effect` faults: the operation has taken effect and answered
    2xx/3xx; the fault then replaces that answer (or delays or hangs it), and the service forgets
    the request's idempotency key, as when a real provider's answer is lost on the way back."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        pending = scope.get(_PENDING)
        status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
        if isinstance(pending, _Pending) and status < 400:
            request = Request(scope, receive)
            failure = await self.sandbox.faults.apply(
                pending.service, pending.operation, request, after_effect=True
            )
            if failure is not None:
                for forget in pending.forget:
                    forget()
                reply = failure_reply(failure, pending.error)
                await reply.response(scope, receive, send)
                return
        for message in held:
            await send(message)


_DEFAULT_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
