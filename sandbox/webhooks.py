"""Delivering the webhooks the control API fires to the gateway (Entrega's API)."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.core import Reply, Sandbox, now_iso

# Mercado Pago waits 22 s for an answer; the others are no more patient.
WEBHOOK_TIMEOUT_SECONDS = 22.0


async def deliver(
    sandbox: Sandbox,
    source: str,
    path: str,
    *,
    json: dict[str, Any],
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one webhook to the gateway; answer what was sent and what the gateway replied.
    The gateway's own status is reported, not raised: a 5xx is a valid outcome to test."""
    url = sandbox.gateway_url.rstrip("/") + path
    record: dict[str, Any] = {"source": source, "url": url, "sent_at": now_iso(), "body": json}
    sandbox.state.webhooks.append(record)
    if sandbox.faults.drops(source):
        # A `webhooks` fault with drop: true: the provider lost this notification.
        record["dropped"] = True
        return {
            "delivered_to": None,
            "dropped": True,
            "status_code": None,
            "response": None,
            "webhook": json,
        }
    try:
        response = await sandbox.webhook_http.post(
            url, params=params, json=json, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        record["error"] = type(exc).__name__
        raise Reply(
            502,
            {
                "error": {
                    "code": "gateway_unreachable",
                    "message": f"could not deliver to {url}: {type(exc).__name__}",
                    "details": {"webhook": json},
                }
            },
        ) from None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:2000]
    record |= {"status_code": response.status_code, "response": answer}
    return {
        "delivered_to": url,
        "status_code": response.status_code,
        "response": answer,
        "webhook": json,
    }
