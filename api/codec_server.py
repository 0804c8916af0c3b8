"""The codec server: lets Temporal's Web UI show payloads decrypted, in the operator's browser.

Its own process and port (`entrega codec-server`, default 127.0.0.1:8081), never the public
gateway: it turns ciphertext back into customers' data. It speaks the protocol the Web UI calls:
`POST /decode` and `POST /encode` with `{"payloads": [...]}` (Payloads protobuf as JSON) and an
`X-Namespace` header. In dev it answers any caller; outside dev only a bearer token signed by the
operators' identity provider (checked against CODEC_AUTH_JWKS_URL, audience CODEC_AUTH_AUDIENCE) —
the Web UI forwards the signed-in operator's token when "pass access token" is on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from fastapi import Depends, FastAPI, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payload, Payloads

from api.errors import ApiError, install_error_handlers
from api.middleware import BodyLimitMiddleware
from contracts.errors import ErrorCode
from settings import Settings, SettingsError
from workflows.codec import EncryptionCodec, PayloadKeyError

logger = logging.getLogger(__name__)

# The UI decodes a whole history page at once; Temporal allows payloads of up to 2 MiB each.
MAX_BODY_BYTES = 16 * 1024 * 1024
# What identity providers sign access tokens with; never "none" or HMAC (a JWKS holds public keys).
TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
# How long fetched signing keys are trusted before the JWKS is read again.
JWKS_CACHE_SECONDS = 300


class TokenVerifier:
    """Checks operators' bearer tokens against the identity provider's JWKS (keys cached)."""

    def __init__(self, jwks_url: str, audience: str) -> None:
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS)
        self._audience = audience

    async def verify(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(ErrorCode.MISSING_TOKEN)
        # PyJWKClient fetches with urllib (blocking): keep the event loop free.
        await asyncio.to_thread(self._verify, token.strip())

    def _verify(self, token: str) -> None:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            jwt.decode(
                token,
                key,
                algorithms=TOKEN_ALGORITHMS,
                audience=self._audience,
                options={"require": ["exp", "aud"]},
            )
        except jwt.InvalidAudienceError:
            raise ApiError(ErrorCode.WRONG_AUDIENCE) from None
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("cannot read the identity provider's JWKS: %s", exc)
            raise ApiError(ErrorCode.IDENTITY_PROVIDER_UNAVAILABLE) from None
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            raise ApiError(ErrorCode.INVALID_TOKEN, message="Token inválido ou expirado") from None


def create_codec_app(settings: Settings) -> FastAPI:
    """The codec server's app. Outside dev, CODEC_AUTH_JWKS_URL, CODEC_AUTH_AUDIENCE and
    CODEC_CORS_ORIGINS must be set (SettingsError names the missing one)."""
    codec = EncryptionCodec(settings.payload_keys)
    verifier: TokenVerifier | None = None
    if not settings.is_dev:
        for name in ("codec_auth_jwks_url", "codec_auth_audience", "codec_cors_origins"):
            if not getattr(settings, name):
                raise SettingsError(f"{name.upper()} is not set (required outside dev mode)")
        assert settings.codec_auth_jwks_url and settings.codec_auth_audience
        verifier = TokenVerifier(settings.codec_auth_jwks_url, settings.codec_auth_audience)

    async def authorized(request: Request) -> None:
        if verifier is not None:
            await verifier.verify(request.headers.get("authorization"))

    app = FastAPI(title="Entrega codec server", version="0.1.0", openapi_url=None)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    # Outermost, so refusals (401, 413) carry CORS headers too and the UI can show them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_origins,
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
        max_age=600,
    )

    async def convert(
        request: Request, work: Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
    ) -> Response:
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as exc:
            raise ApiError(ErrorCode.MALFORMED_PAYLOADS) from exc
        try:
            converted = await work(payloads.payloads)
        except PayloadKeyError as exc:
            raise ApiError(ErrorCode.UNKNOWN_KEY) from exc
        except (InvalidTag, DecodeError) as exc:  # tampered or truncated ciphertext
            raise ApiError(ErrorCode.UNDECODABLE_PAYLOAD) from exc
        body = json_format.MessageToJson(Payloads(payloads=converted))
        return Response(body, media_type="application/json")

    @app.post("/decode", dependencies=[Depends(authorized)])
    async def decode(request: Request) -> Response:
        """Decrypt the payloads the UI shows (unencrypted ones come back unchanged)."""
        return await convert(request, codec.decode)

    @app.post("/encode", dependencies=[Depends(authorized)])
    async def encode(request: Request) -> Response:
        """Encrypt what an operator sends from the UI (a signal's input, say)."""
        return await convert(request, codec.encode)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    return app
