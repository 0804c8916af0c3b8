"""The production-like compose file has what operators rely on (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).parents[2] / "docker-compose.temporal.yml"


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_has_the_cluster_and_the_app_database(services: dict) -> None:
    """Temporal on PostgreSQL, its UI, admin tools, and Entrega's own PostgreSQL are all there."""
    assert set(services) >= {
        "temporal-postgresql",
        "temporal",
        "temporal-admin-tools",
        "temporal-ui",
        "entrega-postgresql",
    }
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["POSTGRES_SEEDS"] == "temporal-postgresql"


def test_images_are_pinned(services: dict) -> None:
    """Every image names an exact version, never `latest` or a bare name."""
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), f"{name}: {image} is not pinned"


def test_published_ports_match_the_interfaces(services: dict) -> None:
    """Temporal on 7233 and its Web UI on 8233, as in dev; the app DB avoids a local 5432."""
    assert "7233:7233" in services["temporal"]["ports"]
    assert "8233:8080" in services["temporal-ui"]["ports"]
    assert "5433:5432" in services["entrega-postgresql"]["ports"]


def test_every_long_running_service_has_a_healthcheck(services: dict) -> None:
    """Each service has a healthcheck, and dependants wait for health, not just start."""
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["temporal"]["depends_on"]["temporal-postgresql"]["condition"] == (
        "service_healthy"
    )
    assert services["temporal-ui"]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_admin_tools_register_the_search_attributes(services: dict) -> None:
    """The one-shot admin container registers EntregaStage and EntregaOrderId as Keywords."""
    command = " ".join(services["temporal-admin-tools"]["command"])
    assert "EntregaStage EntregaOrderId" in command
    assert "--type Keyword" in command


def test_ui_decodes_through_the_codec_server(services: dict) -> None:
    """The cluster's Web UI is pointed at `entrega codec-server` (:8081) from the browser."""
    environment = services["temporal-ui"]["environment"]
    assert environment["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081"
    assert "TEMPORAL_CODEC_PASS_ACCESS_TOKEN" in environment
