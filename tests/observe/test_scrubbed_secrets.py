"""Logs and traces scrub the same secrets: every one Entrega is configured with."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SECRET_FIELDS
from telemetry import logs, process, tracing
from tests.conftest import TEST_SECRETS, make_settings


def test_traces_scrub_every_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracing exporter is handed every secret, not only Resend's and Lovable's keys (an
    Asaas key or an admin token in a span attribute was exported as it was)."""
    handed: dict[str, Any] = {}
    monkeypatch.setattr(logs, "configure_from_settings", lambda service, settings: None)
    monkeypatch.setattr(
        tracing, "configure", lambda service, endpoint, *, secrets: handed.update(s=list(secrets))
    )
    settings = make_settings(
        otel_exporter_otlp_endpoint="http://127.0.0.1:1",
        admin_tokens="carla:carla-token-123",
        database_url="postgresql://entrega:db-password-1@127.0.0.1/entrega",
    )
    process.configure_process("api", settings)
    assert set(handed["s"]) >= {TEST_SECRETS[name] for name in SECRET_FIELDS}
    assert {"carla-token-123", "db-password-1"} <= set(handed["s"])
    assert set(handed["s"]) == set(settings.secret_values())
