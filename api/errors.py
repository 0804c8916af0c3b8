"""Every error leaves the API in one shape: {"error": {"code", "message", "details"}}, its code one
of `contracts.errors.ErrorCode`, its status and pt-BR message the ones `ANSWERS` gives that code."""

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

from contracts.errors import ErrorCode

# The status and pt-BR message of every code the API answers with (docs/interfaces.md, "Errors").
# A route may word the message for its context (`ApiError(..., message=...)`); the code and the
# status are always these.
ANSWERS: dict[ErrorCode, tuple[int, str]] = {
    # signup
    ErrorCode.EMAIL_EXISTS: (409, "Este e-mail já está cadastrado"),
    ErrorCode.PHONE_EXISTS: (409, "Este telefone já está cadastrado"),
    ErrorCode.CPF_EXISTS: (409, "Este CPF já está cadastrado"),
    ErrorCode.AUTH_FAILED: (502, "Erro ao criar conta de acesso"),
    ErrorCode.REGISTRATION_FAILED: (
        503,
        "Erro ao criar conta. Tente novamente em alguns instantes.",
    ),
    ErrorCode.REGISTRATION_ROLLED_BACK: (
        502,
        "Erro no processo de registro. Por favor, tente criar sua conta novamente.",
    ),
    ErrorCode.ROLLBACK_PENDING: (
        503,
        "Não foi possível concluir seu cadastro. Estamos desfazendo o que foi criado; "
        "tente novamente em alguns minutos.",
    ),
    ErrorCode.CHECKOUT_FAILED: (502, "Erro ao criar checkout"),
    ErrorCode.CHECKOUT_IN_PROGRESS: (409, "Já existe um checkout em andamento para esta conta"),
    ErrorCode.CHECKOUT_UNAVAILABLE: (503, "Checkout indisponível. Tente novamente em instantes."),
    ErrorCode.CHECKOUT_PENDING: (
        503,
        "Checkout ainda em processamento. Tente novamente em alguns instantes.",
    ),
    ErrorCode.PROFILE_NOT_FOUND: (404, "Perfil não encontrado"),
    # credits
    ErrorCode.PROFILE_WITHOUT_SUBSCRIPTION: (
        409,
        "Este perfil ainda não tem assinatura: conceda os créditos depois que o primeiro "
        "checkout for concluído",
    ),
    ErrorCode.INSUFFICIENT_CREDITS: (402, "Créditos insuficientes"),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: (
        422,
        "Esta Idempotency-Key já foi usada com outros dados",
    ),
    # admin orders
    ErrorCode.ORDER_NOT_FOUND: (404, "Pedido não encontrado"),
    ErrorCode.ORDER_NOT_RUNNING: (409, "O pedido não tem processamento em andamento"),
    ErrorCode.ORDER_FINISHED: (409, "O pedido já está encerrado e não pode ser cancelado"),
    # webhooks
    ErrorCode.INVALID_SIGNATURE: (401, "Assinatura inválida"),
    ErrorCode.INVALID_TOKEN: (401, "Token inválido"),
    ErrorCode.INVALID_PAYLOAD: (400, "Notificação inválida"),
    ErrorCode.MISSING_PAYMENT_ID: (400, "Notificação sem data.id"),
    ErrorCode.MALFORMED_EVENT: (400, "Evento malformado"),
    ErrorCode.NOT_RECORDED: (503, "Evento não registrado; reenvie mais tarde"),
    ErrorCode.HANDOFF_FAILED: (503, "Serviço temporariamente indisponível"),
    # the codec server
    ErrorCode.MISSING_TOKEN: (401, "Autenticação necessária"),
    ErrorCode.WRONG_AUDIENCE: (403, "Token não emitido para o servidor de codec"),
    ErrorCode.IDENTITY_PROVIDER_UNAVAILABLE: (503, "Provedor de identidade indisponível"),
    ErrorCode.MALFORMED_PAYLOADS: (400, 'Corpo inválido: esperado {"payloads": [...]}'),
    ErrorCode.UNKNOWN_KEY: (422, "Chave de criptografia desconhecida"),
    ErrorCode.UNDECODABLE_PAYLOAD: (422, "Payload não pôde ser decifrado"),
    # any route
    ErrorCode.TEMPORAL_UNAVAILABLE: (503, "Serviço temporariamente indisponível"),
    ErrorCode.DATABASE_UNAVAILABLE: (
        503,
        "Serviço temporariamente indisponível. Tente novamente em instantes.",
    ),
    ErrorCode.NOT_READY: (503, "Serviço ainda não está pronto"),
    ErrorCode.RATE_LIMITED: (429, "Muitas tentativas. Tente novamente mais tarde."),
    ErrorCode.VALIDATION_ERROR: (422, "Dados inválidos"),
    ErrorCode.MALFORMED_JSON: (400, "JSON malformado"),
    ErrorCode.INTERNAL_ERROR: (500, "Erro interno. Tente novamente mais tarde."),
    # plain HTTP errors raised by the framework itself (routing, methods, sizes, ...)
    ErrorCode.BAD_REQUEST: (400, "Requisição inválida"),
    ErrorCode.UNAUTHORIZED: (401, "Não autorizado"),
    ErrorCode.FORBIDDEN: (403, "Acesso negado"),
    ErrorCode.NOT_FOUND: (404, "Recurso não encontrado"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, "Método não permitido"),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "Corpo da requisição muito grande"),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, "Tipo de conteúdo não suportado"),
    ErrorCode.TOO_MANY_REQUESTS: (429, "Muitas requisições"),
    ErrorCode.SERVICE_UNAVAILABLE: (503, "Serviço indisponível"),
}
# A framework error of another status keeps its status, with this code.
_OTHER_HTTP_ERROR = (ErrorCode.HTTP_ERROR, "Erro na requisição")
_HTTP_ERRORS: dict[int, ErrorCode] = {
    ANSWERS[code][0]: code
    for code in (
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.TOO_MANY_REQUESTS,
        ErrorCode.SERVICE_UNAVAILABLE,
    )
}


def message_of(code: ErrorCode) -> str:
    """The pt-BR message `code` answers with when the route words nothing of its own."""
    return ANSWERS[code][1]


class ApiError(Exception):
    """An error answer: its code, with the status and message `ANSWERS` gives it (a route may
    word the message for its context), and structured details."""

    def __init__(
        self,
        code: ErrorCode,
        details: Any = None,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        status, default = ANSWERS[code]
        super().__init__(message or default)
        self.status = status
        self.code = code
        self.message = message or default
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


def error_body(
    code: ErrorCode, details: Any = None, *, message: str | None = None
) -> dict[str, Any]:
    """The body of an error answer (for code that answers below the exception handlers)."""
    return {"error": {"code": code, "message": message or message_of(code), "details": details}}


def error_response(
    code: ErrorCode,
    details: Any = None,
    *,
    message: str | None = None,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, details, message=message),
        status_code=status or ANSWERS[code][0],
        headers=headers,
    )


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
        return error_response(exc.code, exc.details, message=exc.message, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_ERRORS.get(exc.status_code)
        details = exc.detail if isinstance(exc.detail, dict | list) else None
        if code is None:
            other, message = _OTHER_HTTP_ERROR
            return error_response(
                other, details, message=message, status=exc.status_code, headers=exc.headers
            )
        return error_response(code, details, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = [err for err in exc.errors() if err.get("type") == "json_invalid"]
        if malformed:
            # loc is ("body", <byte offset>): report where, not a bogus field name.
            where = malformed[0].get("loc", ())
            position = where[-1] if where and isinstance(where[-1], int) else None
            details = {"position": position, "reason": malformed[0].get("ctx", {}).get("error")}
            return error_response(ErrorCode.MALFORMED_JSON, details)
        return error_response(ErrorCode.VALIDATION_ERROR, _validation_details(exc))

    # The database restarting or out of connections is an outage, not a bug: a retryable 503
    # (the transaction was rolled back, so nothing is half written).
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return error_response(ErrorCode.DATABASE_UNAVAILABLE, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(ErrorCode.INTERNAL_ERROR)
