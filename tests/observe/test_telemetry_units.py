"""The small rules of the telemetry set-up, without servers."""

from __future__ import annotations

import io
import json
import logging

from telemetry import logs, tracing
from telemetry.http import request_id_from, webhook_result


def test_tracing_is_off_without_an_endpoint() -> None:
    """No OTEL_EXPORTER_OTLP_ENDPOINT: nothing is instrumented, no interceptor is added."""
    assert tracing.configure("api", None) is None
    assert tracing.provider() is None
    assert tracing.temporal_interceptors() == []


def test_lines_are_scrubbed_in_both_formats() -> None:
    """E-mails, formatted CPFs, bearer tokens and configured secrets never reach a line; payment
    ids (bare digits) do."""
    for json_lines in (True, False):
        out = io.StringIO()
        handler = logs.configure("t", json_lines=json_lines, stream=out, secrets=["s3cr3t-value"])
        try:
            logging.getLogger("x").warning(
                "ana@example.com 529.982.247-25 Bearer abc.def s3cr3t-value 12345678901",
                extra={"order_id": "purchase:mercadopago:12345678901"},
            )
        finally:
            logging.getLogger().removeHandler(handler)
        text = out.getvalue()
        for private in ("ana@example.com", "529.982.247-25", "abc.def", "s3cr3t-value"):
            assert private not in text
        assert "12345678901" in text
        if json_lines:
            assert json.loads(text)["order_id"] == "purchase:mercadopago:12345678901"


def test_request_ids_are_taken_only_when_sane() -> None:
    """A caller's id is kept when it is a short token; anything else is replaced."""
    assert request_id_from({"headers": [(b"x-request-id", b"abc-123")]}) == "abc-123"
    replaced = request_id_from({"headers": [(b"x-request-id", b"bad id\n" * 40)]})
    assert len(replaced) == 32 and " " not in replaced


def test_webhook_results() -> None:
    """Answers map to the outcome labels the dashboard and alerts use."""
    assert webhook_result(200, "accepted", None, None) == "accepted"
    assert webhook_result(200, "duplicate", None, None) == "duplicate"
    assert webhook_result(401, None, "invalid_signature", "signature already used") == "replay"
    assert webhook_result(401, None, "invalid_signature", "mismatch") == "bad_signature"
    assert webhook_result(503, None, "handoff_failed", None) == "unavailable"
    assert webhook_result(400, None, "malformed_json", None) == "malformed"
