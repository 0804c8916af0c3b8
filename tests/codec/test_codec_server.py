"""`entrega codec-server`: the Web UI's /decode and /encode, CORS for the UI's origin, and outside
dev only tokens the operators' identity provider signed (JWKS served by a local test server)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from api.codec_server import create_codec_app
from settings import SettingsError
from tests.conftest import converter_for_tests, make_settings
from tests.support import serve

ROOT = Path(__file__).parents[2]
AUDIENCE = "entrega-codec"
UI = "http://127.0.0.1:8233"


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


async def _post(client: httpx.AsyncClient, path: str, payloads, **headers: str) -> httpx.Response:
    body = json_format.MessageToJson(Payloads(payloads=payloads))
    return await client.post(
        path,
        content=body,
        headers={"content-type": "application/json", "x-namespace": "default", **headers},
    )


def _payloads(response: httpx.Response) -> list:
    return list(json_format.Parse(response.content, Payloads()).payloads)


async def test_decode_and_encode_round_trip_in_dev() -> None:
    """In dev, /decode turns what the worker wrote back into JSON, /encode seals it again, and
    a payload from before the codec comes back unchanged."""
    app = create_codec_app(make_settings())
    sealed = await converter_for_tests().encode([{"name": "Ana Souza"}])
    plain = await pydantic_data_converter.encode([{"old": True}])
    async with _client(app) as client:
        decoded = await _post(client, "/decode", [*sealed, *plain])
        assert decoded.status_code == 200, decoded.text
        first, second = _payloads(decoded)
        assert json.loads(first.data) == {"name": "Ana Souza"}
        assert second == plain[0]
        encoded = await _post(client, "/encode", [first])
        assert _payloads(encoded)[0].metadata["encoding"] == b"binary/encrypted"
        codec = converter_for_tests().payload_codec
        assert await codec.decode(_payloads(encoded)) == [first]
        bad = await client.post("/decode", content=b"{not json", headers={"x-namespace": "d"})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "malformed_payloads"


async def test_cors_answers_only_the_ui_origin() -> None:
    """The UI's origin gets the preflight it needs (POST, content-type, x-namespace,
    authorization); another origin gets no CORS grant."""
    app = create_codec_app(make_settings(codec_cors_origins=UI))
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-namespace,authorization",
    }
    async with _client(app) as client:
        ok = await client.options("/decode", headers={"origin": UI, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == UI
        assert "x-namespace" in ok.headers["access-control-allow-headers"].lower()
        other = await client.options(
            "/decode", headers={"origin": "https://evil.example.net", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
        answer = await _post(client, "/decode", [], origin=UI)
        assert answer.headers["access-control-allow-origin"] == UI


def test_outside_dev_the_identity_provider_is_required() -> None:
    """Production settings without CODEC_AUTH_JWKS_URL refuse to build the server, naming it."""
    settings = make_settings(
        entrega_env="production",
        database_url="postgresql://x/y",
        supabase_url="http://s",
        lovable_functions_url="http://l",
    )
    with pytest.raises(SettingsError, match="CODEC_AUTH_JWKS_URL"):
        create_codec_app(settings)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": b64(numbers.n),
        "e": b64(numbers.e),
    }


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def jwks_url(idp_key) -> AsyncIterator[str]:
    """The operators' identity provider: a JWKS over real HTTP on a free loopback port."""
    keys = {"keys": [_jwk(idp_key, "op-1")]}
    app = Starlette(routes=[Route("/jwks.json", lambda _: JSONResponse(keys))])
    async with serve(app) as url:
        yield f"{url}/jwks.json"


def _token(key, *, audience: str = AUDIENCE, ttl: int = 300, kid: str = "op-1") -> str:
    now = int(time.time())
    claims = {"sub": "operator@entrega", "aud": audience, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_outside_dev_only_the_identity_providers_tokens_decode(jwks_url, idp_key) -> None:
    """No token, a malformed one, one signed by another key, an expired one → 401; one for
    another audience → 403; the operator's valid token → 200."""
    settings = make_settings(
        entrega_env="production",
        database_url="postgresql://x/y",
        supabase_url="http://s",
        lovable_functions_url="http://l",
        codec_auth_jwks_url=jwks_url,
        codec_auth_audience=AUDIENCE,
        codec_cors_origins=UI,
    )
    app = create_codec_app(settings)
    sealed = await converter_for_tests().encode([{"cpf": "52998224725"}])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async with _client(app) as client:

        async def status(**headers: str) -> int:
            response = await _post(client, "/decode", sealed, **headers)
            if response.status_code != 200:
                assert "52998224725" not in response.text
                assert set(response.json()["error"]) == {"code", "message", "details"}
            return response.status_code

        assert await status() == 401
        assert await status(authorization="Bearer not-a-jwt") == 401
        assert await status(authorization=f"Bearer {_token(other_key)}") == 401
        assert await status(authorization=f"Bearer {_token(idp_key, ttl=-60)}") == 401
        assert await status(authorization=f"Bearer {_token(idp_key, audience='other')}") == 403
        assert await status(authorization=f"Bearer {_token(idp_key)}") == 200
        encode = await _post(client, "/encode", [], authorization="Bearer x")
        assert encode.status_code == 401


def _production_env() -> dict[str, str]:
    from tests.conftest import TEST_SECRETS

    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    env |= {k.upper(): f"prod-{v}" for k, v in TEST_SECRETS.items()}
    env |= {
        "ENTREGA_ENV": "production",
        "DATABASE_URL": "postgresql://db/entrega",
        "SUPABASE_URL": "https://x.supabase.co",
        "LOVABLE_FUNCTIONS_URL": "https://app.example/functions/v1",
        "PYTHONPATH": str(ROOT),
    }
    return env


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({}, "CODEC_AUTH_JWKS_URL"),
        ({"TEMPORAL_PAYLOAD_KEYS": "k1:dG9vLXNob3J0"}, "TEMPORAL_PAYLOAD_KEYS"),
    ],
)
def test_codec_server_refuses_to_start_naming_the_variable(change, named, tmp_path) -> None:
    """Outside dev, `entrega codec-server` without its identity provider, or with a malformed
    key, exits 2 naming the variable (and never printing the key)."""
    result = subprocess.run(
        [sys.executable, "-m", "cli", "codec-server"],
        env=_production_env() | change,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "dG9vLXNob3J0" not in result.stderr
