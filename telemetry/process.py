"""Each process's one call: logs, then traces when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import logging
from typing import Any

from telemetry import logs, tracing


def configure_process(service: str, settings: Any, *, level: str | None = None) -> None:
    """Set up logging (and tracing when configured) for `service`: api, worker, sandbox, cli."""
    logs.configure_from_settings(service, settings)
    if level:
        logging.getLogger().setLevel(level)
    if service in ("api", "worker"):
        secrets = [settings.secret(n) for n in ("resend_api_key", "lovable_service_key")]
        tracing.configure(service, settings.otel_exporter_otlp_endpoint, secrets=secrets)
