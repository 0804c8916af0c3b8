"""Every error leaves the API in one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An error answer with a stable snake_case code and a pt-BR message for people."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


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


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        # Our validators raise ValueError with a pt-BR text; pydantic prefixes it.
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        details.append(
            {"field": ".".join(loc) or None, "message": message, "type": err.get("type")}
        )
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", "Erro interno. Tente novamente mais tarde.")
