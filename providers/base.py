"""What every provider client shares: one request path that turns failures into ProviderErrors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from providers.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    TransientError,
)

Model = TypeVar("Model", bound=BaseModel)

# Longest provider text we copy into an error message; bodies can be whole HTML pages.
_MAX_MESSAGE = 300


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or `RateLimit-Reset` (Asaas)."""
    for name in ("retry-after", "ratelimit-reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


def classify(
    service: str, status: int, code: str | None, message: str, retry_after: float | None
) -> ProviderError:
    """The default mapping of an HTTP error status; clients refine it for their own codes."""
    if status == 429:
        return RateLimitedError(service, message, status=status, code=code, retry_after=retry_after)
    if status >= 500 or status == 408:
        return TransientError(service, message, status=status, code=code, retry_after=retry_after)
    if status == 404:
        return NotFoundError(service, message, status=status, code=code)
    if status == 409:
        return ConflictError(service, message, status=status, code=code)
    return PermanentError(service, message, status=status, code=code)


class ServiceClient:
    """An injected `httpx.AsyncClient` (base URL and timeouts set by the caller) and one secret."""

    service: ClassVar[str]

    def __init__(self, http: httpx.AsyncClient, secret: str | SecretStr) -> None:
        self._http = http
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"

    def _auth_headers(self) -> dict[str, str]:
        """The credential headers of every request; most services take a bearer token."""
        return {"Authorization": f"Bearer {self._secret.get_secret_value()}"}

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        """The provider's (code, message) from an error body; `{"error", "message"}` unless a
        service overrides it with its own shape."""
        if isinstance(body, dict):
            return text(body.get("error")), text(body.get("message"))
        return None, None

    def _error(self, response: httpx.Response) -> ProviderError:
        """Map an error answer; clients override to reclassify their special codes."""
        code, message = self._describe(response)
        return classify(
            self.service, response.status_code, code, message, retry_after_seconds(response.headers)
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; answer the 2xx response or raise the matching ProviderError."""
        try:
            response = await self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers={**self._auth_headers(), **(headers or {})},
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                self.service, f"{method} {path} timed out", code="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                self.service,
                f"{method} {path} could not be sent: {type(exc).__name__}",
                code="connection_error",
            ) from exc
        if response.is_success:
            return response
        raise self._error(response)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            # Typically a proxy's HTML page in front of the provider: worth another try.
            raise TransientError(
                self.service,
                f"answer to {response.request.method} {response.request.url.path} is not JSON",
                status=response.status_code,
                code="invalid_response",
            ) from None

    def _parse(self, model: type[Model], data: Any) -> Model:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise self._unexpected(
                f"unexpected {model.__name__} shape: {exc.error_count()} invalid field(s)"
            ) from None

    def _describe(self, response: httpx.Response) -> tuple[str | None, str]:
        try:
            body = response.json()
        except ValueError:
            body = None
        code, message = self._error_fields(body) if body is not None else (None, None)
        if not message:
            message = response.reason_phrase or f"HTTP {response.status_code}"
        return code, self._redact(message)[:_MAX_MESSAGE]

    def _unexpected(self, message: str) -> PermanentError:
        return PermanentError(self.service, message, code="unexpected_response")

    def _redact(self, text: str) -> str:
        """A provider echoing our credential back must not put it in logs."""
        secret = self._secret.get_secret_value()
        return text.replace(secret, "***") if secret else text


def segment(value: str) -> str:
    """One URL path segment: ids come from webhooks, so they must not be able to change the path."""
    return quote(str(value), safe="")


def text(value: Any) -> str | None:
    return str(value) if value is not None else None
