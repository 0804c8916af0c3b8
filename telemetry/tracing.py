"""OpenTelemetry traces across the whole path: FastAPI, the Temporal client and worker, httpx and
psycopg, so one notification is one trace from the webhook to the Lovable and Resend calls.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: then nothing is instrumented and nothing costs.
Every exported span is scrubbed first: URLs lose their query strings (AppMax's token, Supabase's
e-mail filter ride there) and no attribute or event keeps an e-mail address or a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from telemetry.logs import Scrubber

_URL_KEYS = frozenset({"url.full", "http.url", "http.target", "url.query"})

_provider: TracerProvider | None = None


def _strip_query(key: str, value: Any) -> Any:
    if key == "url.query":
        return ""
    return value.split("?", 1)[0] if isinstance(value, str) else value


def _clean(attributes: Any, scrub: Scrubber) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in _URL_KEYS:
            value = _strip_query(key, value)
        if isinstance(value, str):
            value = scrub(value)
        elif isinstance(value, Sequence) and not isinstance(value, bytes | str):
            value = tuple(scrub(v) if isinstance(v, str) else v for v in value)
        cleaned[key] = value
    return cleaned


class ScrubbingExporter(SpanExporter):
    """Hands the wrapped exporter copies of the spans with their attributes scrubbed."""

    def __init__(self, inner: SpanExporter, secrets: Iterable[str] = ()) -> None:
        self._inner = inner
        self._scrub = Scrubber(secrets)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([self._scrubbed(span) for span in spans])

    def _scrubbed(self, span: ReadableSpan) -> ReadableSpan:
        events = [
            Event(e.name, _clean(e.attributes, self._scrub), e.timestamp) for e in span.events
        ]
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=_clean(span.attributes, self._scrub),
            events=events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def configure(
    service: str,
    endpoint: str | None,
    *,
    exporter: SpanExporter | None = None,
    secrets: Iterable[str] = (),
) -> TracerProvider | None:
    """Start tracing this process when `endpoint` (or, in tests, an `exporter`) is given.

    Instruments httpx and psycopg process-wide; the API and the Temporal client pick the provider
    up through `provider()`. Returns None, instrumenting nothing, when tracing is off."""
    global _provider
    if exporter is None and not endpoint:
        return None
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    tracer_provider = TracerProvider(resource=Resource({"service.name": f"entrega-{service}"}))
    if exporter is not None:
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(ScrubbingExporter(exporter, secrets))
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert endpoint
        otlp = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        tracer_provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(otlp, secrets)))
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
    PsycopgInstrumentor().instrument(tracer_provider=tracer_provider, skip_dep_check=True)
    _provider = tracer_provider
    return tracer_provider


def provider() -> TracerProvider | None:
    """The process's tracer provider, or None when tracing is off."""
    return _provider


def shutdown() -> None:
    """Flush what is pending and stop instrumenting (process exit, or the end of a test)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


def instrument_app(app: Any) -> None:
    """Trace the FastAPI app's requests (not health checks or scrapes) when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # One server span per request: the per-message "http receive/send" spans cost CPU (see
    # bench/observe.py) and tell an operator nothing.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )


def temporal_interceptors() -> list[Any]:
    """Temporal's own tracing interceptor when tracing is on (client and worker alike)."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_provider.get_tracer("temporalio"))]
