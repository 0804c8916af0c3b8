"""Faults on demand: make chosen provider operations fail, slow down or hang."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

# Every operation each emulated service exposes; a fault names one of these, or "*".
OPERATIONS: dict[str, frozenset[str]] = {
    "mercadopago": frozenset({"get_payment", "search_payments"}),
    "asaas": frozenset(
        {
            "list_customers",
            "create_customer",
            "delete_customer",
            "create_subscription",
            "list_subscriptions",
            "get_subscription",
            "delete_subscription",
            "list_payments",
            "get_payment",
        }
    ),
    "supabase": frozenset({"create_user", "delete_user", "list_users", "token"}),
    "lovable": frozenset({"create_user", "deactivate_user"}),
    "resend": frozenset({"send_email", "send_batch"}),
    # The notifications the sandbox sends to the gateway; only `drop: true` applies to them.
    "webhooks": frozenset({"mercadopago", "appmax", "asaas"}),
}
WEBHOOKS = "webhooks"
ANY = "*"
_NAMES = {service: sorted(ops) for service, ops in sorted(OPERATIONS.items())}
# A hang ends when the client gives up; this bounds it when no client ever does.
MAX_HANG_SECONDS = 120.0


class FaultSpec(BaseModel):
    """What `POST /_sandbox/faults` accepts. Without `times` or `rate` the fault always fires."""

    service: str
    operation: str = ANY
    status: int | None = Field(default=None, ge=400, le=599)
    times: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    timeout: bool = False
    # Optional overrides of the error body, e.g. resend's "daily_quota_exceeded".
    code: str | None = None
    message: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    # The operation takes effect first, then the fault answers: the answer is lost, and so is the
    # service's memory of the request's idempotency key (a retry is a new request).
    after_effect: bool = False
    # Service `webhooks` only: the notification is never sent (the provider lost it).
    drop: bool = False

    @model_validator(mode="after")
    def _known_target(self) -> Self:
        if self.service != ANY and self.service not in OPERATIONS:
            raise _unknown("service", self.service)
        known = (
            set().union(*OPERATIONS.values()) if self.service == ANY else OPERATIONS[self.service]
        )
        if self.operation != ANY and self.operation not in known:
            raise _unknown("operation", self.operation)
        if self.times is not None and self.rate is not None:
            raise ValueError("give times or rate, not both")
        if (self.service == WEBHOOKS) != self.drop:
            raise ValueError('drop: true goes with service "webhooks", and only with it')
        if self.status is None and not self.timeout and not self.latency_ms and not self.drop:
            raise ValueError("a fault needs a status, a latency_ms or timeout")
        return self


def _unknown(kind: str, name: str) -> PydanticCustomError:
    """A 422 that teaches the names: every service with its operations, in the message for a
    person and in `ctx.operations` for a script."""
    listing = "; ".join(f"{service}: {', '.join(ops)}" for service, ops in _NAMES.items())
    message = f'unknown {kind} {name!r}; operations per service ("*" for all): {listing}'
    return PydanticCustomError(f"unknown_{kind}", message, {"operations": _NAMES})


@dataclass
class Fault:
    spec: FaultSpec
    id: str = field(default_factory=lambda: f"flt_{uuid.uuid4().hex[:12]}")
    fired: int = 0

    def matches(self, service: str, operation: str) -> bool:
        spec = self.spec
        return spec.service in (ANY, service) and spec.operation in (ANY, operation)

    @property
    def exhausted(self) -> bool:
        return self.spec.times is not None and self.fired >= self.spec.times

    def view(self) -> dict[str, object]:
        return {"id": self.id, "fired": self.fired, **self.spec.model_dump(exclude_none=True)}


@dataclass(frozen=True)
class Failure:
    """What a fired fault asks the emulated endpoint to answer instead of its normal reply."""

    status: int
    code: str | None
    message: str | None
    retry_after: int | None


HangOutcome = Literal["client_gone", "released", "expired"]


class FaultStore:
    """The faults in force. All access happens on the server's one event loop."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._rng = rng or random.Random()
        self._released = asyncio.Event()

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(spec)
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        """Forget every fault and let every hanging request go."""
        self._faults.clear()
        self._released.set()
        self._released = asyncio.Event()

    def views(self) -> list[dict[str, object]]:
        return [fault.view() for fault in self._faults]

    def fire(self, service: str, operation: str, *, after_effect: bool = False) -> list[Fault]:
        """The faults that fire for this call, in the order they were added (counts updated);
        `after_effect` picks the faults that answer after the operation took effect."""
        fired = []
        for fault in self._faults:
            if fault.exhausted or not fault.matches(service, operation):
                continue
            if fault.spec.after_effect != after_effect:
                continue
            if fault.spec.rate is not None and self._rng.random() >= fault.spec.rate:
                continue
            fault.fired += 1
            fired.append(fault)
        return fired

    def drops(self, source: str) -> bool:
        """Whether the notification the sandbox is about to send for `source` is lost."""
        for fault in self._faults:
            if not fault.spec.drop or fault.exhausted or not fault.matches(WEBHOOKS, source):
                continue
            if fault.spec.rate is not None and self._rng.random() >= fault.spec.rate:
                continue
            fault.fired += 1
            return True
        return False

    async def apply(
        self, service: str, operation: str, request: Request, *, after_effect: bool = False
    ) -> Failure | None:
        """Run this call's faults: sleep their latency, hang if asked, and say which error to
        answer (None: answer normally)."""
        fired = self.fire(service, operation, after_effect=after_effect)
        if not fired:
            return None
        latency = sum(f.spec.latency_ms for f in fired) / 1000
        if latency:
            await asyncio.sleep(latency)
        for fault in fired:
            spec = fault.spec
            if spec.timeout:
                await self._hang(request)
                return Failure(504, "sandbox_timeout", "the sandbox hung this request", None)
            if spec.status is not None:
                return Failure(spec.status, spec.code, spec.message, spec.retry_after)
        return None

    async def _hang(self, request: Request) -> HangOutcome:
        """Hold the request until its client disconnects (it timed out), faults are cleared, or
        MAX_HANG_SECONDS pass, so a server shutdown is never blocked for long."""
        released = self._released
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_HANG_SECONDS
        while loop.time() < deadline:
            if await request.is_disconnected():
                return "client_gone"
            try:
                await asyncio.wait_for(released.wait(), timeout=0.05)
                return "released"
            except TimeoutError:
                continue
        return "expired"
