"""Resend: transactional e-mail (POST /emails, POST /emails/batch) with its Idempotency-Key
semantics."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.base import ServiceClient, text
from providers.errors import PermanentError, ProviderError, TransientError

MAX_IDEMPOTENCY_KEY = 256
MAX_BATCH = 100


class EmailMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: list[str] | str
    subject: str
    html: str
    text: str
    tags: dict[str, str] = Field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The request body in Resend's shape."""
        return {
            "from": self.from_,
            "to": [self.to] if isinstance(self.to, str) else self.to,
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "tags": [{"name": name, "value": value} for name, value in self.tags.items()],
        }


class BatchAnswer(BaseModel):
    """Per e-mail of a batch, in request order: its Resend id, or why it was refused."""

    ids: list[str | None]
    errors: dict[int, str] = Field(default_factory=dict)


class ResendClient(ServiceClient):
    """Errors arrive as {"statusCode", "name", "message"}."""

    service = "resend"

    def __init__(self, http: httpx.AsyncClient, api_key: str | SecretStr) -> None:
        super().__init__(http, api_key)

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict):
            return text(body.get("name")), text(body.get("message"))
        return None, None

    def _error(self, response: httpx.Response) -> ProviderError:
        error = super()._error(response)
        if error.code == "concurrent_idempotent_requests":
            # The first request with this key is still running: a later retry gets its answer.
            return TransientError(self.service, error.message, status=error.status, code=error.code)
        if error.code in ("daily_quota_exceeded", "monthly_quota_exceeded"):
            # A 429, but retrying within minutes cannot help: let a person decide.
            return PermanentError(self.service, error.message, status=error.status, code=error.code)
        return error

    async def send_email(self, message: EmailMessage, idempotency_key: str) -> str:
        """Send once per key: a replay with the same key and body answers the first e-mail's id;
        the same key with another body is a ConflictError (invalid_idempotent_request)."""
        if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters")
        response = await self._request(
            "POST", "/emails", json=message.payload(), headers={"Idempotency-Key": idempotency_key}
        )
        body = self._json(response)
        email_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(email_id, str):
            raise self._unexpected("the e-mail answer has no id")
        return email_id

    async def send_batch(self, payloads: list[dict[str, Any]], idempotency_key: str) -> BatchAnswer:
        """Send 1 to 100 e-mails (bodies as `EmailMessage.payload()` makes them) in one request,
        validated per e-mail (`permissive`): an invalid one is refused alone, in `errors` by its
        position. The key covers the whole batch: a replay with the same bodies in the same order
        answers the first ids without sending again."""
        if not 0 < len(payloads) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} e-mails")
        if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters")
        response = await self._request(
            "POST",
            "/emails/batch",
            json=payloads,
            headers={"Idempotency-Key": idempotency_key, "x-batch-validation": "permissive"},
        )
        body = self._json(response)
        data = body.get("data") if isinstance(body, dict) else None
        raw_errors = body.get("errors") if isinstance(body, dict) else None
        errors: dict[int, str] = {}
        for item in raw_errors or []:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(payloads):
                raise self._unexpected("a batch error names no e-mail of the batch")
            errors[index] = str(item.get("message") or "invalid e-mail")
        valid = [index for index in range(len(payloads)) if index not in errors]
        if (
            not isinstance(data, list)
            or len(data) != len(valid)
            or not all(isinstance(d, dict) and isinstance(d.get("id"), str) for d in data)
        ):
            raise self._unexpected("the batch answer does not give one id per valid e-mail")
        ids: list[str | None] = [None] * len(payloads)
        for index, item in zip(valid, data, strict=True):
            ids[index] = item["id"]
        return BatchAnswer(ids=ids, errors=errors)
