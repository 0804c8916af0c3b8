"""How a provider call failed: permanent (do not retry) or transient (let Temporal retry)."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider answered with an error or could not be reached."""

    def __init__(
        self, service: str, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.service}: {self.message}{self.details_suffix}"

    @property
    def details_suffix(self) -> str:
        """` (HTTP 503, code)`, or empty when neither is known."""
        where = ", ".join(
            part for part in (f"HTTP {self.status}" if self.status else "", self.code or "") if part
        )
        return f" ({where})" if where else ""

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[ProviderError], state: dict[str, object]) -> ProviderError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error


class PermanentError(ProviderError):
    """Retrying the same request cannot succeed: bad credentials, invalid data, a refusal."""


class ConflictError(PermanentError):
    """The resource already exists, or an idempotency key was reused with another body."""


class NotFoundError(PermanentError):
    """The resource does not exist."""


class TransientError(ProviderError):
    """The provider may succeed later: 429, 5xx, a timeout or a connection failure."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(service, message, status=status, code=code)


class RateLimitedError(TransientError):
    """The provider asked us to slow down; `retry_after` says for how long when it told us."""
