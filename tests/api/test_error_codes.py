"""One failure vocabulary: every code the API can answer with has its status and pt-BR message in
`api/errors.py: ANSWERS`, and no code outside `contracts.errors.ErrorCode` leaves the API."""

from __future__ import annotations

from api.errors import ANSWERS, ApiError, error_body
from contracts.errors import ErrorCode

# Failure types that stay between activities and workflows (an HTTP answer never carries them),
# and the framework's catch-all for statuses without a code of their own.
NEVER_ANSWERED = {
    ErrorCode.PROVIDER_UNAVAILABLE,
    ErrorCode.PROVIDER_RATE_LIMITED,
    ErrorCode.PROVIDER_REJECTED,
    ErrorCode.ORDER_REFUNDED,
    ErrorCode.ORDER_MISSING,
    ErrorCode.INVALID_DATA,
    ErrorCode.PERMANENT_ERROR,
    ErrorCode.CONFLICT_ERROR,
    ErrorCode.NOT_FOUND_ERROR,
    ErrorCode.CHECKOUT_RUNNING,
    ErrorCode.REGISTERED_CONCURRENTLY,
    ErrorCode.CONCURRENT_REGISTRATION_FAILED,
    ErrorCode.HTTP_ERROR,
}


def test_every_answerable_code_has_a_status_and_a_message() -> None:
    """A new ErrorCode either gets its answer in ANSWERS or is declared internal here."""
    assert set(ErrorCode) - set(ANSWERS) == NEVER_ANSWERED
    for code, (status, message) in ANSWERS.items():
        assert 400 <= status <= 599, code
        assert message.strip(), code


def test_an_api_error_takes_status_and_message_from_its_code() -> None:
    """A route names only the code (and, at most, its own wording of the message)."""
    error = ApiError(ErrorCode.ORDER_NOT_FOUND)
    assert (error.status, error.code, error.message) == (
        404,
        "order_not_found",
        "Pedido não encontrado",
    )
    worded = ApiError(ErrorCode.INVALID_TOKEN, message="Token do webhook inválido")
    assert (worded.status, worded.message) == (401, "Token do webhook inválido")
    assert error_body(ErrorCode.RATE_LIMITED, {"retry_after_seconds": 3}) == {
        "error": {
            "code": "rate_limited",
            "message": "Muitas tentativas. Tente novamente mais tarde.",
            "details": {"retry_after_seconds": 3},
        }
    }
