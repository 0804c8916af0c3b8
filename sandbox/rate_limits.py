"""Rate limits on demand: answer 429 with `Retry-After` beyond N requests per second, as Resend
does at 2/s per team. Only requests let through count towards the limit."""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from pydantic import BaseModel, Field, model_validator

from sandbox.faults import ANY, FaultSpec

WINDOW_SECONDS = 1.0


class RateLimitSpec(BaseModel):
    """What `POST /_sandbox/rate-limits` accepts."""

    service: str
    operation: str = ANY
    per_second: float = Field(gt=0, le=10_000)

    @model_validator(mode="after")
    def _known_target(self) -> Self:
        # The same names (and the same teaching 422) as faults.
        FaultSpec(service=self.service, operation=self.operation, status=429)
        return self


@dataclass
class RateLimit:
    spec: RateLimitSpec
    id: str = field(default_factory=lambda: f"rl_{uuid.uuid4().hex[:12]}")
    admitted: deque[float] = field(default_factory=deque)
    refused: int = 0

    def matches(self, service: str, operation: str) -> bool:
        return self.spec.service in (ANY, service) and self.spec.operation in (ANY, operation)

    def view(self) -> dict[str, object]:
        return {"id": self.id, "refused": self.refused, **self.spec.model_dump()}


class RateLimits:
    """The limits in force. All access happens on the server's one event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits: list[RateLimit] = []
        self._clock = clock

    def add(self, spec: RateLimitSpec) -> RateLimit:
        limit = RateLimit(spec)
        self._limits.append(limit)
        return limit

    def clear(self) -> None:
        self._limits.clear()

    def views(self) -> list[dict[str, object]]:
        return [limit.view() for limit in self._limits]

    def check(self, service: str, operation: str) -> int | None:
        """None when the call may go ahead (it is counted); else the seconds to wait."""
        now = self._clock()
        waits = []
        matching = [limit for limit in self._limits if limit.matches(service, operation)]
        for limit in matching:
            # At 2/s, at most two calls in any one second; below 1/s, one call per 1/rate s.
            allowed = max(1, math.floor(limit.spec.per_second * WINDOW_SECONDS))
            span = max(WINDOW_SECONDS, 1 / limit.spec.per_second)
            while limit.admitted and limit.admitted[0] <= now - span:
                limit.admitted.popleft()
            if len(limit.admitted) >= allowed:
                waits.append(limit.admitted[-allowed] + span - now)
        if waits:
            for limit in matching:
                limit.refused += 1
            return max(1, math.ceil(max(waits)))
        for limit in matching:
            limit.admitted.append(now)
        return None
