"""Every failure code Entrega speaks: the `type` of the ApplicationErrors activities and workflows
raise, and the `code` of the API's error answers (docs/interfaces.md, "Errors").

The values are on the wire (in workflow histories, in API answers): never change one. The API maps
each code it answers with to an HTTP status and a pt-BR message in `api/errors.py`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # --- a provider's failure, as every activity reports it (activities/failures.py) ---------
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_REJECTED = "provider_rejected"

    # --- purchase activities (in recorded histories: their spelling stays) --------------------
    ORDER_REFUNDED = "OrderRefunded"
    ORDER_MISSING = "OrderMissing"
    INVALID_DATA = "InvalidData"
    # A provider's refusal, named after its error class (providers/errors.py), as `last_error`
    # has always shown it.
    PERMANENT_ERROR = "PermanentError"
    CONFLICT_ERROR = "ConflictError"
    NOT_FOUND_ERROR = "NotFoundError"

    # --- Asaas payments: the checkout that owns the subscription has not saved it yet ---------
    CHECKOUT_RUNNING = "checkout_running"

    # --- signup sagas: failure types that are also the API's answers -------------------------
    EMAIL_EXISTS = "email_exists"
    PHONE_EXISTS = "phone_exists"
    CPF_EXISTS = "cpf_exists"
    AUTH_FAILED = "auth_failed"
    REGISTRATION_FAILED = "registration_failed"
    REGISTRATION_ROLLED_BACK = "registration_rolled_back"
    CHECKOUT_FAILED = "checkout_failed"
    # An undoing that failed its first attempt and keeps retrying (the outcome is decided).
    ROLLBACK_PENDING = "rollback_pending"
    # A registration's `outcome` update, to a request whose e-mail a concurrent registration is
    # handling: that one succeeded (the e-mail is taken), or failed (this one may take its turn).
    REGISTERED_CONCURRENTLY = "registered_concurrently"
    CONCURRENT_REGISTRATION_FAILED = "concurrent_registration_failed"

    # --- API answers -------------------------------------------------------------------------
    CHECKOUT_IN_PROGRESS = "checkout_in_progress"
    CHECKOUT_UNAVAILABLE = "checkout_unavailable"
    CHECKOUT_PENDING = "checkout_pending"
    PROFILE_NOT_FOUND = "profile_not_found"
    PROFILE_WITHOUT_SUBSCRIPTION = "profile_without_subscription"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_RUNNING = "order_not_running"
    ORDER_FINISHED = "order_finished"
    INVALID_SIGNATURE = "invalid_signature"
    MISSING_TOKEN = "missing_token"  # noqa: S105 (a code, not a token)
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a code, not a token)
    INVALID_PAYLOAD = "invalid_payload"
    MISSING_PAYMENT_ID = "missing_payment_id"
    MALFORMED_EVENT = "malformed_event"
    NOT_RECORDED = "not_recorded"
    HANDOFF_FAILED = "handoff_failed"
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    RATE_LIMITED = "rate_limited"
    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    NOT_READY = "not_ready"
    # The codec server (api/codec_server.py).
    WRONG_AUDIENCE = "wrong_audience"
    IDENTITY_PROVIDER_UNAVAILABLE = "identity_provider_unavailable"
    MALFORMED_PAYLOADS = "malformed_payloads"
    UNKNOWN_KEY = "unknown_key"
    UNDECODABLE_PAYLOAD = "undecodable_payload"
    # Plain HTTP errors the framework raises (routing, methods, sizes), and the unexpected.
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_MANY_REQUESTS = "too_many_requests"
    SERVICE_UNAVAILABLE = "service_unavailable"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"


# Which duplicate a profile's unique index (or Supabase) reported, by the field it is about.
DUPLICATE_CODES: dict[str, ErrorCode] = {
    "email": ErrorCode.EMAIL_EXISTS,
    "phone": ErrorCode.PHONE_EXISTS,
    "cpf_cnpj": ErrorCode.CPF_EXISTS,
}
