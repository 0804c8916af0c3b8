"""One logging set-up for every process: JSON lines outside dev, readable lines in dev.

Every line carries the service and, where they apply, the request id (from `X-Request-ID`, carried
into workflows and activities by `telemetry.temporal`), the workflow id, run id, activity and
attempt (from `workflow.logger` / `activity.logger`), and the order or profile id. Lines are
scrubbed on the way out: e-mail addresses and configured secrets never reach a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from temporalio import activity, workflow

# The request id of the HTTP request (or Temporal header) being served; None elsewhere.
REQUEST_ID: ContextVar[str | None] = ContextVar("entrega_request_id", default=None)

# Fields a line may carry besides its message, in the order the readable format prints them.
FIELDS = (
    "request_id",
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity",
    "attempt",
    "order_id",
    "profile_id",
    "stage",
    "event",
)
# `extra=` keys callers may set beyond FIELDS (e.g. an access line's route and status).
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Formatted CPFs only: bare 11-digit numbers are mostly payment ids, which operators need.
_CPF = re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
REDACTED = "[redacted]"


class Scrubber:
    """Removes personal data and secrets from text: e-mails, CPFs, bearer tokens, and every
    secret value the process was configured with."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _BEARER.sub(r"\1" + REDACTED, text)
        text = _EMAIL.sub("[email]", text)
        return _CPF.sub("[cpf]", text)


def _temporal_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Workflow and activity details the SDK's loggers put on `extra`."""
    fields: dict[str, Any] = {}
    wf: Mapping[str, Any] | None = getattr(record, "temporal_workflow", None)
    if wf:
        fields |= {
            "workflow_id": wf.get("workflow_id"),
            "run_id": wf.get("run_id"),
            "workflow_type": wf.get("workflow_type"),
        }
    act: Mapping[str, Any] | None = getattr(record, "temporal_activity", None)
    if act:
        fields |= {
            "workflow_id": act.get("workflow_id"),
            "run_id": act.get("workflow_run_id"),
            "workflow_type": act.get("workflow_type"),
            "activity": act.get("activity_type"),
            "attempt": act.get("attempt"),
        }
    return fields


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Everything a line says besides its time, level, logger and message."""
    fields = _temporal_fields(record)
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id:
        fields["request_id"] = request_id
    for key, value in vars(record).items():
        if key in _RESERVED or key.startswith("temporal_") or key == "workflow_info":
            continue
        if key not in fields or fields[key] is None:
            fields[key] = value
    return {k: v for k, v in fields.items() if v is not None}


class _Formatter(logging.Formatter):
    def __init__(self, service: str, scrub: Scrubber) -> None:
        super().__init__()
        self.service = service
        self.scrub = scrub

    def _message(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return message


class JsonFormatter(_Formatter):
    """One JSON object per line: ts, level, service, logger, msg, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": self._message(record),
        }
        line |= record_fields(record)
        return self.scrub(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(_Formatter):
    """`HH:MM:SS level service logger: message key=value ...`, for people reading dev logs."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        ordered = [k for k in FIELDS if k in fields] + sorted(k for k in fields if k not in FIELDS)
        tail = " ".join(f"{k}={fields[k]}" for k in ordered)
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{when} {record.levelname:<7} {self.service} {record.name}: {self._message(record)}"
        return self.scrub(f"{text}  {tail}" if tail else text)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each line (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


def configure(
    service: str,
    *,
    json_lines: bool,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route every logger of the process (ours, uvicorn's, the Temporal SDK's) to one handler.

    Idempotent: a second call replaces the handler the first one installed."""
    handler: logging.StreamHandler = (  # type: ignore[type-arg]
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    scrub = Scrubber(secrets)
    handler.setFormatter(
        JsonFormatter(service, scrub) if json_lines else TextFormatter(service, scrub)
    )
    handler.set_name("entrega")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "entrega"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # httpx logs every request's full URL at INFO, query strings (tokens, e-mail filters)
    # included; our access lines and traces say what is needed.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The details go into fields of their own rather than onto the end of the message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    return handler


def configure_from_settings(service: str, settings: Any) -> logging.Handler:
    """`configure` as `LOG_FORMAT` and `LOG_LEVEL` say (auto: readable in dev, JSON otherwise)."""
    from urllib.parse import urlsplit

    from settings import SECRET_FIELDS

    fmt = settings.log_format
    json_lines = fmt == "json" or (fmt == "auto" and settings.entrega_env != "dev")
    secrets = [settings.secret(name) for name in SECRET_FIELDS]
    secrets += list(settings.operator_tokens())
    if settings.database_url and (password := urlsplit(settings.database_url).password):
        secrets.append(password)
    return configure(service, json_lines=json_lines, level=settings.log_level, secrets=secrets)
