"""The one mapping from a provider's error to the failure Temporal sees, for every activity.

- permanent (401/403/404/422, a refusal): non-retryable, typed for the workflow to branch on;
- rate limited (429): retryable, typed `provider_rate_limited`, and retried no sooner than the
  provider's `Retry-After` (`next_retry_delay`); the purchase workflow does not count it against
  the retry budget that ends in `failed_permanent`;
- anything else transient (5xx, timeouts): retryable `provider_unavailable`, on the caller's
  backoff, or after `Retry-After` when the provider sent one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ActivityError, ApplicationError

from contracts.errors import ErrorCode
from providers.errors import ProviderError, RateLimitedError, TransientError


def provider_failure(
    exc: ProviderError, *, permanent_type: ErrorCode = ErrorCode.PROVIDER_REJECTED
) -> ApplicationError:
    """The ApplicationError to raise (`from exc`) for a provider's error."""
    if isinstance(exc, TransientError):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        limited = isinstance(exc, RateLimitedError)
        return ApplicationError(
            f"{exc.service} {'limitou as chamadas' if limited else 'indisponível'}: "
            f"{exc.message}{exc.details_suffix}",
            {"retry_after": exc.retry_after},
            type=ErrorCode.PROVIDER_RATE_LIMITED if limited else ErrorCode.PROVIDER_UNAVAILABLE,
            next_retry_delay=delay,
        )
    return ApplicationError(
        f"{exc.service} recusou: {exc.message}{exc.details_suffix}",
        type=permanent_type,
        non_retryable=True,
    )


def is_rate_limited(failure: BaseException) -> bool:
    """Whether an activity failure (or the ApplicationError inside it) is a provider's 429."""
    cause = failure.cause if isinstance(failure, ActivityError) else failure
    return isinstance(cause, ApplicationError) and cause.type == ErrorCode.PROVIDER_RATE_LIMITED


def retry_after(failure: BaseException) -> timedelta | None:
    """The provider's `Retry-After` carried by a rate-limited failure, if it sent one."""
    cause = failure.cause if isinstance(failure, ActivityError) else failure
    if not isinstance(cause, ApplicationError) or not cause.details:
        return None
    detail = cause.details[0]
    seconds = detail.get("retry_after") if isinstance(detail, dict) else None
    return timedelta(seconds=seconds) if isinstance(seconds, int | float) and seconds > 0 else None
