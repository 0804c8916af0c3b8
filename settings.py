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
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

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
    def retry_schedule(self) -> list[timedelta]:
        return [parse_duration(part) for part in self.provisioning_retry_schedule.split(",")]

    def secret(self, name: str) -> str:
        """The plain value of a secret field; empty when unset (dev and tests only)."""
        value = getattr(self, name)
        assert value is None or isinstance(value, SecretStr)
        return value.get_secret_value() if value is not None else ""
