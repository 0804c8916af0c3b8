"""Configuration refuses to start incomplete or with dev secrets outside dev mode."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import ValidationError

from settings import SECRET_FIELDS, Settings, parse_duration
from tests.conftest import TEST_SECRETS


def _production_values() -> dict[str, object]:
    values: dict[str, object] = {k: f"prod-{v}" for k, v in TEST_SECRETS.items()}
    values |= {
        "entrega_env": "production",
        "database_url": "postgresql://db/entrega",
        "supabase_url": "https://x.supabase.co",
        "lovable_functions_url": "https://app.example/functions/v1",
    }
    return values


def test_complete_production_settings_load() -> None:
    """With every secret and address set, production settings load."""
    settings = Settings(_env_file=None, **_production_values())  # type: ignore[call-arg]
    assert not settings.is_dev


@pytest.mark.parametrize("missing", SECRET_FIELDS)
def test_missing_secret_outside_dev_names_the_variable(missing: str) -> None:
    """Each missing secret stops start-up with an error naming its variable."""
    values = _production_values()
    del values[missing]
    with pytest.raises(ValidationError, match=missing.upper()):
        Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_dev_secret_refused_outside_dev() -> None:
    """A dev value (the `dev-` prefix `entrega dev` prints) is refused in production."""
    values = _production_values() | {"admin_token": "dev-admin-token"}
    with pytest.raises(ValidationError, match="ADMIN_TOKEN holds a dev secret"):
        Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_dev_mode_needs_no_secrets() -> None:
    """Dev mode starts with nothing configured."""
    assert Settings(_env_file=None, entrega_env="dev").is_dev  # type: ignore[call-arg]


def test_retry_schedule_parses_and_rejects_garbage() -> None:
    """PROVISIONING_RETRY_SCHEDULE is a list of durations; nonsense is refused."""
    settings = Settings(_env_file=None, entrega_env="dev", provisioning_retry_schedule="30s,2m,1h")  # type: ignore[call-arg]
    assert settings.retry_schedule == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(hours=1),
    ]
    assert parse_duration("5m") == timedelta(minutes=5)
    with pytest.raises(ValidationError, match="invalid duration"):
        Settings(_env_file=None, entrega_env="dev", provisioning_retry_schedule="5 minutes")  # type: ignore[call-arg]


# Every duration setting, its environment variable's text, and the timedelta it must become.
DURATIONS = {
    "PROVISIONING_RETRY_SCHEDULE": ("5m,10m,20m", [timedelta(minutes=m) for m in (5, 10, 20)]),
    "PURCHASE_PAYMENT_DEADLINE": ("48h", timedelta(hours=48)),
    "PURCHASE_REVOCATION_WINDOW": ("180d", timedelta(days=180)),
    "HTTP_TIMEOUT_SECONDS": ("2.5", timedelta(seconds=2.5)),
    "SIGNUP_ANSWER_TIMEOUT_SECONDS": ("30", timedelta(seconds=30)),
    "PURCHASE_STEP_TIMEOUT_SECONDS": ("10m", timedelta(minutes=10)),
    "PURCHASE_STEP_INITIAL_INTERVAL_SECONDS": ("0.05", timedelta(seconds=0.05)),
    "MERCADOPAGO_SIGNATURE_TOLERANCE_SECONDS": ("300", timedelta(seconds=300)),
    # Above the step timeout, as start-up requires.
    "WORKER_GRACEFUL_SHUTDOWN": ("15m", timedelta(minutes=15)),
}


def test_duration_settings_are_timedeltas_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every duration variable, in each form it accepts, is a timedelta on the settings object."""
    for name, (text, _) in DURATIONS.items():
        monkeypatch.setenv(name, text)
    settings = Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]
    for name, (_, expected) in DURATIONS.items():
        assert getattr(settings, name.lower()) == expected, name


def test_duration_defaults_are_timedeltas() -> None:
    """Unset, the durations have their documented defaults, already parsed."""
    settings = Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]
    assert settings.provisioning_retry_schedule == [timedelta(minutes=m) for m in (5, 10, 20)]
    assert settings.purchase_payment_deadline == timedelta(days=7)
    assert settings.http_timeout_seconds == timedelta(seconds=10)


@pytest.mark.parametrize("text", ["5 minutes", "", "5m,,10m", "-5m", "1w"])
def test_nonsense_durations_are_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """A duration that does not parse stops start-up."""
    monkeypatch.setenv("PROVISIONING_RETRY_SCHEDULE", text)
    with pytest.raises(ValidationError, match="invalid duration"):
        Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]


def test_cli_refuses_to_start_naming_the_variable(tmp_path) -> None:
    """`entrega migrate` outside dev with a secret missing exits 2 and names it."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    env |= {k.upper(): str(v) for k, v in _production_values().items()}
    del env["RESEND_API_KEY"]
    result = subprocess.run(
        [sys.executable, "-m", "cli", "migrate"],
        env=env,
        cwd=tmp_path,  # no .env there
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "RESEND_API_KEY" in result.stderr


@pytest.mark.parametrize("command", ["api", "worker", "migrate"])
def test_processes_refuse_to_start_without_a_database(command: str, tmp_path) -> None:
    """In dev without DATABASE_URL, each process exits 2 saying how to get one, no traceback."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "ENTREGA_ENV": "dev"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL is not set" in result.stderr
    assert ".entrega/dev.env" in result.stderr
    assert "Traceback" not in result.stderr


def test_reconcile_durations_are_timedeltas(monkeypatch) -> None:
    """RECONCILE_INTERVAL / RECONCILE_LOOKBACK default to 10 min / 48 h and read `5m` or ISO 8601
    from the environment; zero or garbage is refused."""
    defaults = Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]
    assert (defaults.reconcile_interval, defaults.reconcile_lookback) == (
        timedelta(minutes=10),
        timedelta(hours=48),
    )
    monkeypatch.setenv("RECONCILE_INTERVAL", "5m")
    monkeypatch.setenv("RECONCILE_LOOKBACK", "P3D")
    monkeypatch.setenv("RECONCILE_ORPHANS_GRACE", "PT90S")
    read = Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]
    assert (read.reconcile_interval, read.reconcile_lookback, read.reconcile_orphans_grace) == (
        timedelta(minutes=5),
        timedelta(days=3),
        timedelta(seconds=90),
    )
    for bad in ("0s", "soon"):
        monkeypatch.setenv("RECONCILE_INTERVAL", bad)
        with pytest.raises(ValidationError, match="reconcile_interval"):
            Settings(_env_file=None, entrega_env="dev")  # type: ignore[call-arg]
