"""Every error the API gives, including the framework's own, has the documented shape."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, field_validator

from api.app import create_app
from tests.conftest import make_settings


class _Echo(BaseModel):
    name: str
    weight_grams: int

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Informe o nome")
        return value


def _app_with_probe_route():
    app = create_app(
        make_settings(database_url="postgresql:///unused"), pool=object(), temporal=None
    )  # type: ignore[arg-type]
    router = APIRouter()

    @router.post("/_probe")
    async def probe(body: _Echo) -> _Echo:
        return body

    app.include_router(router)
    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app_with_probe_route())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def _assert_shape(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    """An unknown path answers 404 not_found in the error shape."""
    _assert_shape(await client.get("/nope"), 404, "not_found")


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    """A known path with the wrong method answers 405 method_not_allowed."""
    _assert_shape(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_oversized_body_announced(client: httpx.AsyncClient) -> None:
    """A body over 64 KiB answers 413 before it is read."""
    error = _assert_shape(
        await client.post("/_probe", content=b"x" * (64 * 1024 + 1)), 413, "payload_too_large"
    )
    assert error["details"] == {"max_bytes": 65536}


async def test_oversized_body_streamed(client: httpx.AsyncClient) -> None:
    """A chunked body without Content-Length is cut off at 64 KiB too."""

    async def chunks():
        for _ in range(20):
            yield b"y" * 4096

    _assert_shape(await client.post("/_probe", content=chunks()), 413, "payload_too_large")


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    """Broken JSON answers 400 malformed_json."""
    response = await client.post(
        "/_probe", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    error = _assert_shape(response, 400, "malformed_json")
    assert error["details"]["position"] == 9


async def test_validation_error_names_fields(client: httpx.AsyncClient) -> None:
    """Well-formed JSON with bad fields answers 422 validation_error, one entry per field."""
    error = _assert_shape(
        await client.post("/_probe", json={"weight_grams": "heavy"}), 422, "validation_error"
    )
    assert {d["field"] for d in error["details"]} == {"name", "weight_grams"}


async def test_healthz(client: httpx.AsyncClient) -> None:
    """/healthz answers while the process is up."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    """/metrics exposes request counters labelled by route template."""
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'entrega_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text
    )


async def test_validator_messages_reach_people_verbatim(client: httpx.AsyncClient) -> None:
    """A validator's pt-BR message is shown as written, without pydantic's "Value error, "."""
    error = _assert_shape(
        await client.post("/_probe", json={"name": " ", "weight_grams": 1}), 422, "validation_error"
    )
    assert error["details"][0]["message"] == "Informe o nome"
