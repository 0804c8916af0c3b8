"""Every error leaves the API in one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An error answer with a stable snake_case code and a pt-BR message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case code")
    message: str = Field(description="For people, in pt-BR")
    details: Any = Field(default=None, description="Structured details, or null")


class ErrorResponse(BaseModel):
    """The shape of every error answer."""

    error: ErrorDetail


# What each status means wherever a route documents it (`responses(...)`).
_STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: JSON that does not parse, nests too deep, or a webhook payload "
    "outside the accepted shape",
    401: "Missing or invalid credentials",
    402: "Not enough credits",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body over the size limit",
    422: "Invalid field values (`validation_error`, with a message per field)",
    429: "Rate limited (`rate_limited`); the `Retry-After` header says when to try again",
    502: "A provider refused the operation",
    503: "Temporarily unavailable; try again later",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the error shape."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        documented[status] = {"model": ErrorResponse, "description": _STATUS_DESCRIPTIONS[status]}
        if status == 429:
            documented[status]["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again",
                    "schema": {"type": "integer"},
                }
            }
    return documented


# Every route can answer these: bad JSON or an oversized body, and field validation.
COMMON_ERRORS = (400, 413, 422)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


# Plain HTTP errors raised by the framework itself (routing, methods, ...).
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Requisição inválida"),
    401: ("unauthorized", "Não autorizado"),
    403: ("forbidden", "Acesso negado"),
    404: ("not_found", "Recurso não encontrado"),
    405: ("method_not_allowed", "Método não permitido"),
    413: ("payload_too_large", "Corpo da requisição muito grande"),
    415: ("unsupported_media_type", "Tipo de conteúdo não suportado"),
    429: ("too_many_requests", "Muitas requisições"),
    503: ("service_unavailable", "Serviço indisponível"),
}


# pt-BR for the pydantic errors that no validator of ours words itself (a missing field, a
# body that is not an object, ...); anything else falls back to a generic message.
_VALIDATION_MESSAGES: dict[str, str] = {
    "missing": "Campo obrigatório",
    "extra_forbidden": "Campo não permitido",
    "model_attributes_type": "Envie um objeto JSON",
    "dict_type": "Envie um objeto JSON",
    "string_type": "Informe um texto",
    "string_too_short": "Texto muito curto",
    "string_too_long": "Texto muito longo",
    "int_type": "Informe um número inteiro",
    "int_parsing": "Informe um número inteiro",
    "int_from_float": "Informe um número inteiro",
    "bool_type": "Informe verdadeiro ou falso",
    "greater_than_equal": "Valor abaixo do mínimo permitido",
    "less_than_equal": "Valor acima do máximo permitido",
    "uuid_type": "Identificador inválido",
    "uuid_parsing": "Identificador inválido",
    "literal_error": "Valor não permitido",
    "enum": "Valor não permitido",
    "string_pattern_mismatch": "Formato inválido",
    "decimal_parsing": "Informe um número",
    "decimal_type": "Informe um número",
    "finite_number": "Informe um número finito",
}
_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def _validation_message(err: Mapping[str, Any]) -> str:
    """The pt-BR message of one pydantic error: our validators' own text, without the prefix
    pydantic puts before it, or a translation of pydantic's English."""
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        for prefix in _VALUE_ERROR_PREFIXES:
            msg = msg.removeprefix(prefix)
        return msg
    return _VALIDATION_MESSAGES.get(kind, "Valor inválido")


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        details.append(
            {
                "field": ".".join(loc) or None,
                "message": _validation_message(err),
                "type": err.get("type"),
            }
        )
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        # For the access line and webhook outcomes (telemetry.http): which refusal this was.
        request.scope["entrega.error_code"] = exc.code
        request.scope["entrega.error_details"] = exc.details
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_ERRORS.get(exc.status_code, ("http_error", "Erro na requisição"))
        details = exc.detail if isinstance(exc.detail, dict | list) else None
        return error_response(exc.status_code, code, message, details, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = [err for err in exc.errors() if err.get("type") == "json_invalid"]
        if malformed:
            # loc is ("body", <byte offset>): report where, not a bogus field name.
            where = malformed[0].get("loc", ())
            position = where[-1] if where and isinstance(where[-1], int) else None
            details = {"position": position, "reason": malformed[0].get("ctx", {}).get("error")}
            return error_response(400, "malformed_json", "JSON malformado", details)
        return error_response(422, "validation_error", "Dados inválidos", _validation_details(exc))

    # The database restarting or out of connections is an outage, not a bug: a retryable 503
    # (the transaction was rolled back, so nothing is half written).
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return error_response(
            503,
            "database_unavailable",
            "Serviço temporariamente indisponível. Tente novamente em instantes.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", "Erro interno. Tente novamente mais tarde.")
