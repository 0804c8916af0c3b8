"""Entrega's configuration: one class, read from the environment and `.env`, validated at start."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
)
# Addresses with no sensible production default.
REQUIRED_OUTSIDE_DEV = ("database_url", "supabase_url", "lovable_functions_url")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `2h` or `1d` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number followed by s, m, h or d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


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
    mercadopago_signature_tolerance_seconds: int = 300

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

    provisioning_retry_schedule: str = Field(default="5m,10m,20m")
    http_timeout_seconds: float = 10.0
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
    purchase_payment_deadline: str = "7d"
    # How long a completed order keeps listening for a refund or chargeback.
    purchase_revocation_window: str = "180d"
    # Temporal's own quick retries of one step before the PROVISIONING_RETRY_SCHEDULE takes over.
    purchase_step_attempts: int = Field(default=3, ge=1)
    purchase_step_initial_interval_seconds: float = Field(default=1.0, gt=0)
    # One attempt's limit; also how soon the work of a crashed worker is handed to another.
    purchase_step_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- signup sagas (issue #5) ---
    # How long register/checkout wait for their saga before answering "try again shortly".
    signup_answer_timeout_seconds: float = 30.0

    # --- worker capacity and shutdown (issue #10) ---
    # How long SIGTERM lets in-flight activity attempts finish before they are cancelled; above
    # the step timeout, so a deploy never cuts an attempt short (`90s`, `2m`, or seconds).
    worker_graceful_shutdown: timedelta = timedelta(seconds=60)
    # Slots per worker process; each activity holds at most one database connection at a time.
    worker_max_concurrent_activities: int = Field(default=16, ge=1)
    worker_max_concurrent_local_activities: int = Field(default=8, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(default=16, ge=2)
    # E-mails run on their own task queue (`<TEMPORAL_TASK_QUEUE>-email`), so the server enforces
    # RESEND_RATE_LIMIT across every worker; these are one worker's slots for it.
    worker_max_concurrent_email_activities: int = Field(default=2, ge=1)
    # Resend's limit per team, in requests per second, shared by all workers.
    resend_rate_limit: float = Field(default=2.0, gt=0)
    # Unset: one connection per activity slot of every kind (see `worker_pool_size`).
    worker_db_pool_max_size: int | None = Field(default=None, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8900

    @field_validator("provisioning_retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        for part in value.split(","):
            parse_duration(part)
        return value

    @field_validator("purchase_payment_deadline", "purchase_revocation_window")
    @classmethod
    def _duration_parses(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("worker_graceful_shutdown", mode="before")
    @classmethod
    def _grace_parses(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().isdigit():
            return parse_duration(value)
        return value

    @model_validator(mode="after")
    def _worker_capacity_is_consistent(self) -> Settings:
        step = timedelta(seconds=self.purchase_step_timeout_seconds)
        if self.worker_graceful_shutdown < step:
            raise SettingsError(
                f"WORKER_GRACEFUL_SHUTDOWN ({self.worker_graceful_shutdown}) is below "
                f"PURCHASE_STEP_TIMEOUT_SECONDS ({step}): a deploy would cut attempts short"
            )
        needed = self.worker_slots
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
        """The worker's database pool: one connection per activity slot, unless set."""
        return self.worker_db_pool_max_size or self.worker_slots

    @property
    def email_task_queue(self) -> str:
        """Where e-mail activities run, rate limited by the server for every worker at once."""
        return f"{self.temporal_task_queue}-email"

    @property
    def retry_schedule(self) -> list[timedelta]:
        return [parse_duration(part) for part in self.provisioning_retry_schedule.split(",")]

    def secret(self, name: str) -> str:
        """The plain value of a secret field; empty when unset (dev and tests only)."""
        value = getattr(self, name)
        assert value is None or isinstance(value, SecretStr)
        return value.get_secret_value() if value is not None else ""
