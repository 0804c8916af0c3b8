"""Resend `POST /emails` and `POST /emails/batch` with their Idempotency-Key semantics: the same
key and body answer the first response without sending again; the same key with another body is
409 `invalid_idempotent_request`; a key whose first request is still running is 409
`concurrent_idempotent_requests`. Keys are kept 24 h, a batch's apart from single e-mails'.

A batch holds 1 to 100 e-mails and is one request of the rate limit. Validation is `strict` by
default (one invalid e-mail refuses the whole batch with its 422) or, with the header
`x-batch-validation: permissive`, per e-mail: the valid ones are sent and answered in `data`, in
request order, and the invalid ones in `errors` as {index, message}."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from fastapi import APIRouter, Request

from sandbox.core import Reply, Sandbox, bearer, json_body, new_uuid, now_iso

MAX_KEY = 256
KEY_TTL_SECONDS = 24 * 3600
MAX_RECIPIENTS = 50
MAX_BATCH = 100
VALIDATION_MODES = ("strict", "permissive")
_ADDRESS = re.compile(r"^(?:[^<>]*<\s*)?([^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)\s*>?$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "name": code, "message": message}


def invalid(message: str) -> Reply:
    return Reply(422, error(422, "validation_error", message))


def _recipients(value: Any) -> list[str]:
    to = [value] if isinstance(value, str) else value
    if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
        raise invalid("The `to` field must be an e-mail address or a list of them.")
    if len(to) > MAX_RECIPIENTS:
        raise invalid(f"The `to` field accepts at most {MAX_RECIPIENTS} addresses.")
    for address in to:
        if not _ADDRESS.match(address.strip()):
            raise invalid(f"Invalid `to` field: {address!r}.")
    return [t.strip() for t in to]


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise invalid("The `tags` field must be a list of {name, value}.")
    tags: dict[str, str] = {}
    for tag in value:
        name = tag.get("name") if isinstance(tag, dict) else None
        text = tag.get("value") if isinstance(tag, dict) else None
        if not isinstance(name, str) or not isinstance(text, str):
            raise invalid("Each tag needs a string `name` and `value`.")
        if not _TAG.match(name) or not _TAG.match(text):
            raise invalid("Tags may only contain ASCII letters, numbers, underscores or dashes.")
        tags[name] = text
    return tags


def _message(body: dict[str, Any]) -> dict[str, Any]:
    sender = body.get("from")
    if not isinstance(sender, str) or not _ADDRESS.match(sender.strip()):
        raise invalid(
            "Invalid `from` field. Use `email@example.com` or `Name <email@example.com>`."
        )
    to = _recipients(body.get("to"))
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise invalid("Missing `subject` field.")
    html, text = body.get("html"), body.get("text")
    if not html and not text:
        raise invalid("Missing `html` or `text` field.")
    return {
        "from": sender,
        "to": to,
        "subject": subject,
        "html": html,
        "text": text,
        "tags": _tags(body.get("tags")),
        "headers": body.get("headers") or {},
    }


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def router(sandbox: Sandbox) -> APIRouter:
    api = APIRouter(prefix="/resend", tags=["resend"])

    def authenticate(request: Request) -> None:
        token = bearer(request)
        if token is None:
            raise Reply(
                401, error(401, "missing_api_key", "Missing API key in the authorization header")
            )
        if token != sandbox.secret("resend_api_key"):
            raise Reply(403, error(403, "invalid_api_key", "API key is invalid"))

    def idempotency_key(request: Request) -> str | None:
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_KEY:
            raise Reply(
                400,
                error(400, "invalid_idempotency_key", f"The key must be 1-{MAX_KEY} characters."),
            )
        return key

    def replay(cache: dict[str, dict[str, Any]], key: str, fingerprint: str) -> Any:
        """The first answer for `key`, or None after claiming the key for this request (before
        any await: a concurrent twin sees "in progress", not a free key)."""
        seen = cache.get(key)
        if seen is not None and seen["expires"] < time.time():
            seen = None
        if seen is not None:
            if seen["fingerprint"] != fingerprint:
                raise Reply(
                    409,
                    error(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    ),
                )
            if seen["response"] is None:
                raise Reply(
                    409,
                    error(
                        409,
                        "concurrent_idempotent_requests",
                        "Same idempotency key used while the original request is in progress.",
                    ),
                )
            return seen["response"]
        cache[key] = {
            "fingerprint": fingerprint,
            "response": None,
            # Wall-clock time, so a key's life carries over a restart (the state file).
            "expires": time.time() + KEY_TTL_SECONDS,
        }
        return None

    def answered(
        request: Request, cache: dict[str, dict[str, Any]], key: str | None, answer: Any
    ) -> None:
        if key is not None:
            cache[key]["response"] = answer
            sandbox.on_lost_answer(request, lambda: cache.pop(key, None))

    def record(message: dict[str, Any], **keys: str | None) -> str:
        email_id = new_uuid()
        sandbox.state.emails.append({"id": email_id, **message, **keys, "created_at": now_iso()})
        return email_id

    @api.post("/emails")
    async def send_email(request: Request) -> dict[str, Any]:
        authenticate(request)
        body = await json_body(request, error)
        key = idempotency_key(request)
        cache = sandbox.state.resend_idempotency
        if key is not None and (first := replay(cache, key, _fingerprint(body))) is not None:
            response: dict[str, Any] = first
            return response
        try:
            await sandbox.fault("resend", "send_email", request, error)
            message = _message(body)
        except BaseException:
            if key is not None:
                cache.pop(key, None)  # a failed request does not hold the key
            raise
        answer = {"id": record(message, idempotency_key=key)}
        answered(request, cache, key, answer)
        return answer

    @api.post("/emails/batch")
    async def send_batch(request: Request) -> dict[str, Any]:
        authenticate(request)
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise Reply(
                400, error(400, "invalid_json", "The request body is not valid JSON")
            ) from None
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise invalid("The request body must be an array of e-mails.")
        if not 0 < len(body) <= MAX_BATCH:
            raise invalid(f"A batch holds 1 to {MAX_BATCH} e-mails.")
        mode = request.headers.get("x-batch-validation", "strict").lower()
        if mode not in VALIDATION_MODES:
            raise invalid("The `x-batch-validation` header must be `strict` or `permissive`.")
        key = idempotency_key(request)
        cache = sandbox.state.resend_batch_idempotency
        fingerprint = _fingerprint({"mode": mode, "emails": body})
        if key is not None and (first := replay(cache, key, fingerprint)) is not None:
            response: dict[str, Any] = first
            return response
        try:
            await sandbox.fault("resend", "send_batch", request, error)
            messages: list[dict[str, Any] | None] = []
            errors: list[dict[str, Any]] = []
            for index, item in enumerate(body):
                try:
                    messages.append(_message(item))
                except Reply as refused:
                    if mode == "strict":
                        raise
                    messages.append(None)
                    detail = json.loads(bytes(refused.response.body))
                    errors.append({"index": index, "message": detail["message"]})
        except BaseException:
            if key is not None:
                cache.pop(key, None)  # a failed request does not hold the key
            raise
        data = [
            {"id": record(message, idempotency_key=None, batch_idempotency_key=key)}
            for message in messages
            if message is not None
        ]
        answer: dict[str, Any] = {"data": data}
        if mode == "permissive":
            answer["errors"] = errors
        answered(request, cache, key, answer)
        return answer

    return api
