"""Entrega's configuration: one class, read from the environment and `.env`, validated at start."""

from __future__ import annotations

import hmac
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workflows.codec import PayloadKey, parse_payload_keys

DEV_SECRET_PREFIX = "dev-"  # noqa: S105 - a marker, not a secret

# Every secret Entrega needs; outside dev each must be set and must not be a dev value.
SECRET_FIELDS = (
    "mercadopago_access_token",
    "mercadopago_webhook_secret",
    "appmax_webhook_token",
    "asaas_api_key",
    "asaas_webhook_token",
    "supabase_service_key",
    "supabase_jwt_secret",
    "lovable_service_key",
    "resend_api_key",
    "admin_token",
    "credentials_key",
    "temporal_payload_keys",
    "registration_id_key",
)


def secret_matches(expected: str, given: str | None) -> bool:
    """Whether `given` is the secret `expected`, compared in constant time (on bytes: a str
    with non-ASCII characters would raise); an unset secret never matches anything."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


# Addresses with no sensible production default.
# Database connections the e-mail activities of one worker share at most (see worker_pool_size).
EMAIL_POOL_SHARE = 8
REQUIRED_OUTSIDE_DEV = ("database_url", "supabase_url", "lovable_functions_url")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_SECONDS = re.compile(r"^\s*\d+(\.\d+)?\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `2h` or `1d` into a timedelta; a bare number (`30`, `0.5`) is seconds,
    the form the `*_SECONDS` variables always took."""
    if _SECONDS.match(text):
        return timedelta(seconds=float(text))
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number followed by s, m, h or d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _duration(value: Any) -> Any:
    """Every duration setting goes through here once, at start-up: text as `parse_duration`
    reads it, a number as seconds, a timedelta as it is."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


def _durations(value: Any) -> Any:
    """A comma-separated list of durations (`5m,10m,20m`), or a list of them."""
    if isinstance(value, str):
        return [parse_duration(part) for part in value.split(",")]
    if isinstance(value, list | tuple):
        return [_duration(part) for part in value]
    return value


# A duration setting: `5m`, `48h`, `7d`, `30s` or a number of seconds, parsed once into a timedelta.
Duration = Annotated[timedelta, BeforeValidator(_duration)]
# A list of them, written `5m,10m,20m` (NoDecode: the environment's text is not JSON).
Durations = Annotated[list[timedelta], NoDecode, BeforeValidator(_durations)]


class SettingsError(ValueError):
    """The configuration is incomplete or unsafe; the message names the variable."""


class Settings(BaseSettings):
    """All of Entrega's configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    entrega_env: Literal["dev", "test", "production"] = "production"
    entrega_home: Path = Path(".entrega")

    database_url: str | None = None
    # The API's pool. The worker sizes its own from its concurrency (WORKER_DB_POOL_MAX_SIZE).
    db_pool_max_size: int = 20

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "entrega"

    mercadopago_api_url: str = "https://api.mercadopago.com"
    mercadopago_access_token: SecretStr | None = None
    mercadopago_webhook_secret: SecretStr | None = None
    # How far a notification's `ts` may be from now before it counts as a replay.
    mercadopago_signature_tolerance_seconds: Duration = timedelta(seconds=300)

    appmax_webhook_token: SecretStr | None = None

    asaas_api_url: str = "https://api.asaas.com/v3"
    asaas_api_key: SecretStr | None = None
    asaas_webhook_token: SecretStr | None = None

    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None
    supabase_jwt_secret: SecretStr | None = None

    lovable_functions_url: str | None = None
    lovable_service_key: SecretStr | None = None

    resend_api_url: str = "https://api.resend.com"
    resend_api_key: SecretStr | None = None
    email_from: str = "Entrega <nao-responda@entrega.app>"

    product_name: str = "Entrega"
    admin_token: SecretStr | None = None
    # Fernet key that keeps generated passwords encrypted until the credentials e-mail is accepted.
    credentials_key: SecretStr | None = None

    # --- personal data in Temporal (issue #13) ---
    # `key-id:base64-key,...` (AES-256): the first encrypts every payload, all of them decrypt.
    temporal_payload_keys: SecretStr | None = None
    # Keys the HMAC in registration workflow ids; never rotated (ids must stay stable).
    registration_id_key: SecretStr | None = None
    # The codec server for the Web UI: where it listens, which UI origins may call it, and
    # (outside dev) the operators' identity provider whose tokens it accepts.
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8081
    codec_cors_origins: str = ""
    codec_auth_jwks_url: str | None = None
    codec_auth_audience: str | None = None

    # Waits between provisioning retry rounds once Temporal's quick retries are spent.
    provisioning_retry_schedule: Durations = Field(
        default=[timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)], min_length=1
    )
    http_timeout_seconds: Duration = timedelta(seconds=10)
    max_body_bytes: int = 64 * 1024

    # --- providers and sandbox (issue #3) ---
    # Asaas requires a User-Agent naming the application; empty means PRODUCT_NAME.
    asaas_user_agent: str | None = None
    # Where the sandbox sends webhooks it is asked to fire; empty means this API's own address.
    sandbox_gateway_url: str | None = None

    # --- purchases (issue #4) ---
    # Where the credentials e-mail sends the customer to log in.
    product_login_url: str = "https://app.entrega.app/login"
    # How long a pending payment (boleto, Pix) may stay unpaid before the order is cancelled.
    purchase_payment_deadline: Duration = timedelta(days=7)
    # How long a completed order keeps listening for a refund or chargeback.
    purchase_revocation_window: Duration = timedelta(days=180)
    # Temporal's own quick retries of one step before the PROVISIONING_RETRY_SCHEDULE takes over.
    purchase_step_attempts: int = Field(default=3, ge=1)
    purchase_step_initial_interval_seconds: Duration = Field(
        default=timedelta(seconds=1), gt=timedelta(0)
    )
    # One attempt's limit; also how soon the work of a crashed worker is handed to another.
    purchase_step_timeout_seconds: Duration = Field(default=timedelta(seconds=30), gt=timedelta(0))

    # How long the webhook gateway waits for Temporal to take a notice before it acknowledges the
    # notice from the intake inbox instead (PostgreSQL; forwarded as soon as Temporal can take it).
    webhook_handoff_budget_seconds: Duration = Field(
        default=timedelta(milliseconds=250), ge=timedelta(0)
    )

    # --- signup sagas (issue #5) ---
    # How long register/checkout wait for their saga before answering "try again shortly".
    signup_answer_timeout_seconds: Duration = timedelta(seconds=30)

    # --- observability (issue 14) ---
    # auto: readable lines in dev, JSON lines otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"
    # host:port where this worker process serves Prometheus metrics; empty = off.
    worker_metrics_address: str | None = None
    # Traces are exported over OTLP/HTTP to this endpoint when set; off (and free) otherwise.
    otel_exporter_otlp_endpoint: str | None = None
    # Named operator credentials, `name:token,name:token`; ADMIN_TOKEN keeps working as "admin".
    admin_tokens: SecretStr | None = None

    # --- rate limits (issue 9): requests per window, 0 = off; counted in PostgreSQL, so shared
    # by every API process. Only requests that pass validation count.
    rate_limit_window_seconds: Duration = timedelta(minutes=10)
    registration_rate_per_address: int = Field(default=30, ge=0)
    registration_rate_per_email: int = Field(default=5, ge=0)
    checkout_rate_per_address: int = Field(default=60, ge=0)
    checkout_rate_per_user: int = Field(default=10, ge=0)

    # --- scheduled reconciliation (issue #12) ---
    # How often the provider reconciliations run, and how far back each one looks (windows
    # overlap, so nothing falls between two runs). Durations: `10m`, `48h`, or ISO 8601.
    reconcile_interval: timedelta = timedelta(minutes=10)
    reconcile_lookback: timedelta = timedelta(hours=48)
    # The orphan check scans whole accounts: hourly. Records younger than the grace period may
    # still be a saga's work in progress and are not reported.
    reconcile_orphans_interval: timedelta = timedelta(hours=1)
    reconcile_orphans_grace: timedelta = timedelta(minutes=30)
    # How often old webhook_signatures rows are forgotten.
    prune_signatures_interval: timedelta = timedelta(hours=1)

    # --- worker capacity and shutdown (issue #10) ---
    # How long SIGTERM lets in-flight activity attempts finish before they are cancelled; above
    # the step timeout, so a deploy never cuts an attempt short (`90s`, `2m`, or seconds).
    worker_graceful_shutdown: Duration = timedelta(seconds=60)
    # Slots per worker process; each activity holds at most one database connection at a time.
    worker_max_concurrent_activities: int = Field(default=16, ge=1)
    worker_max_concurrent_local_activities: int = Field(default=8, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(default=16, ge=2)
    # E-mails run on their own task queue (`<TEMPORAL_TASK_QUEUE>-email`); these are one worker's
    # slots for it. A worker sends its e-mails up to 100 per Resend request, so the slots are
    # what fills a batch: an e-mail activity mostly waits for its batch's answer.
    worker_max_concurrent_email_activities: int = Field(default=200, ge=1)
    # Resend's limit per team, in requests per second, shared by all workers (through PostgreSQL,
    # `activities/mailer.py`); each request carries up to 100 e-mails.
    resend_rate_limit: float = Field(default=2.0, gt=0)
    # Unset: one connection per activity slot of every kind (see `worker_pool_size`).
    worker_db_pool_max_size: int | None = Field(default=None, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn processes serving `entrega api` on one port (the kernel spreads connections): the
    # webhook gateway's share of a busy machine's CPU grows with it.
    api_workers: int = Field(default=1, ge=1, le=64)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8900

    @field_validator("admin_tokens")
    @classmethod
    def _tokens_are_named(cls, value: SecretStr | None) -> SecretStr | None:
        for entry in (value.get_secret_value() if value else "").split(","):
            name, sep, token = entry.strip().partition(":")
            if entry.strip() and not (name and sep and token):
                raise ValueError("ADMIN_TOKENS must be name:token pairs separated by commas")
        return value

    @field_validator("temporal_payload_keys")
    @classmethod
    def _payload_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            parse_payload_keys(value.get_secret_value())
        return value

    @field_validator(
        "reconcile_interval",
        "reconcile_lookback",
        "reconcile_orphans_interval",
        "reconcile_orphans_grace",
        "prune_signatures_interval",
        mode="before",
    )
    @classmethod
    def _short_duration(cls, value: object) -> object:
        """`10m`, `48h`, `1d` as everywhere else in Entrega; pydantic reads the rest (ISO 8601)."""
        if isinstance(value, str) and _DURATION.match(value):
            return parse_duration(value)
        return value

    @field_validator(
        "reconcile_interval",
        "reconcile_lookback",
        "reconcile_orphans_interval",
        "prune_signatures_interval",
        "rate_limit_window_seconds",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _worker_capacity_is_consistent(self) -> Settings:
        step = self.purchase_step_timeout_seconds
        if self.worker_graceful_shutdown < step:
            raise SettingsError(
                f"WORKER_GRACEFUL_SHUTDOWN ({self.worker_graceful_shutdown}) is below "
                f"PURCHASE_STEP_TIMEOUT_SECONDS ({step}): a deploy would cut attempts short"
            )
        needed = self.worker_connections_needed
        if self.worker_db_pool_max_size is not None and self.worker_db_pool_max_size < needed:
            raise SettingsError(
                f"WORKER_DB_POOL_MAX_SIZE ({self.worker_db_pool_max_size}) is below the worker's "
                f"{needed} activity slots: activities would wait for connections"
            )
        return self

    @model_validator(mode="after")
    def _refuse_incomplete_production_config(self) -> Settings:
        if self.is_dev:
            return self
        for name in REQUIRED_OUTSIDE_DEV + SECRET_FIELDS:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise SettingsError(f"{name.upper()} is not set (required outside dev mode)")
            if isinstance(value, SecretStr) and value.get_secret_value().startswith(
                DEV_SECRET_PREFIX
            ):
                raise SettingsError(f"{name.upper()} holds a dev secret; refusing outside dev mode")
        return self

    @property
    def is_dev(self) -> bool:
        return self.entrega_env in ("dev", "test")

    @property
    def gateway_url(self) -> str:
        """Where the sandbox delivers webhooks (default http://127.0.0.1:8000, the dev API)."""
        return self.sandbox_gateway_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def worker_slots(self) -> int:
        """Activities one worker process may run at once, of every kind."""
        return (
            self.worker_max_concurrent_activities
            + self.worker_max_concurrent_local_activities
            + self.worker_max_concurrent_email_activities
        )

    @property
    def worker_pool_size(self) -> int:
        """The worker's database pool, unless set: one connection per activity slot, except that
        e-mail activities, which hold one only for a few short statements, share at most
        EMAIL_POOL_SHARE."""
        return self.worker_db_pool_max_size or self.worker_connections_needed

    @property
    def worker_connections_needed(self) -> int:
        return (
            self.worker_max_concurrent_activities
            + self.worker_max_concurrent_local_activities
            + min(self.worker_max_concurrent_email_activities, EMAIL_POOL_SHARE)
        )

    @property
    def email_task_queue(self) -> str:
        """Where e-mail activities run, rate limited by the server for every worker at once."""
        return f"{self.temporal_task_queue}-email"

    @property
    def retry_schedule(self) -> list[timedelta]:
        return list(self.provisioning_retry_schedule)

    def operator_tokens(self) -> dict[str, str]:
        """Operator name by bearer token: ADMIN_TOKEN is "admin", then each of ADMIN_TOKENS."""
        tokens = {}
        if admin := self.secret("admin_token"):
            tokens[admin] = "admin"
        for entry in self.secret("admin_tokens").split(","):
            name, _, token = entry.strip().partition(":")
            if name and token:
                tokens[token] = name
        return tokens

    @property
    def payload_keys(self) -> list[PayloadKey]:
        """The payload codec's keys, the encrypting one first."""
        text = self.secret("temporal_payload_keys")
        if not text:
            raise SettingsError("TEMPORAL_PAYLOAD_KEYS is not set")
        return parse_payload_keys(text)

    @property
    def codec_origins(self) -> list[str]:
        """Web UI origins allowed to call the codec server (dev: the local UI's)."""
        origins = [o.strip().rstrip("/") for o in self.codec_cors_origins.split(",") if o.strip()]
        if not origins and self.is_dev:
            return ["http://localhost:8233", "http://127.0.0.1:8233"]
        return origins

    def secret_values(self) -> list[str]:
        """Every secret value configured, for the log and trace scrubbers: the SECRET_FIELDS,
        each operator token and the database password."""
        from urllib.parse import urlsplit

        values = [self.secret(name) for name in SECRET_FIELDS]
        values += list(self.operator_tokens())
        if self.database_url and (password := urlsplit(self.database_url).password):
            values.append(password)
        return [value for value in values if value]

    def secret(self, name: str) -> str:
        """The plain value of a secret field; empty when unset (dev and tests only)."""
        value = getattr(self, name)
        assert value is None or isinstance(value, SecretStr)
        return value.get_secret_value() if value is not None else ""
