"""What a use case refuses with: domain exceptions that know nothing of HTTP.

Handlers and domain code raise these; `sous_service.errors.install_error_handlers` (installed by
`create_service_app`) is the one place that turns each class into a status code, a `{"detail", "code", ...}`
body and headers. A caller that is not HTTP (a consumer, the scheduler) catches them as what they are.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldError(BaseModel):
    """One invalid input, located by its field path (`steps[2].agent_id`)."""

    field: str
    message: str
    type: str


class DomainError(Exception):
    """A refusal by the domain. `code` names it for clients; `extra` adds fields to the error body."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(DomainError):
    """The thing does not exist (in the caller's workspace)."""

    code = "not_found"

    def __init__(self, what: str, identifier: str, *, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or f"{what} '{identifier}' not found", **extra)
        self.what = what
        self.identifier = identifier


class Conflict(DomainError):
    """The state does not allow the command (a duplicate, a stale revision, a wrong status)."""

    code = "conflict"


class Forbidden(DomainError):
    """The caller may not do this, whatever the state."""

    code = "forbidden"


class RateLimited(DomainError):
    """Refused for now: a limit is reached; the caller may try again after `retry_after_s` seconds."""

    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.retry_after_s = max(1, int(retry_after_s))


class Unavailable(DomainError):
    """A dependency the use case needs is out of reach; nothing was changed."""

    code = "unavailable"

    def __init__(self, detail: str, *, retry_after_s: int | None = None, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.retry_after_s = retry_after_s


class DependencyFailed(DomainError):
    """A dependency answered, but not usefully (an error of another service)."""

    code = "dependency_failed"


class InputInvalid(DomainError):
    """The input breaks a rule the request schema cannot express; carries every field path at fault."""

    code = "validation_error"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str, type_: str = "value_error") -> InputInvalid:
        return cls([FieldError(field=field, message=message, type=type_)])
