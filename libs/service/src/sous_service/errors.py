"""One error shape for every service: `{"detail": str, "code": str}`; 422s carry field paths.

This is the one place where refusals become HTTP: the domain exceptions of `sous_service.domain_errors`
(raised by handlers) map to a status through `DOMAIN_STATUS`; `ApiError` is for entry points only (a
missing scope, an invalid internal context, a proxy's upstream failure).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from sous_events.failures import is_transient
from sous_events.store import EventTooLarge
from sous_service.domain_errors import (
    Conflict,
    DependencyFailed,
    DomainError,
    FieldError,
    Forbidden,
    InputInvalid,
    NotFound,
    RateLimited,
    Unavailable,
)

__all__ = [
    "DOMAIN_STATUS",
    "ApiError",
    "ErrorBody",
    "FieldError",
    "InputInvalid",
    "ValidationErrorBody",
    "domain_error_response",
    "install_error_handlers",
    "not_found",
    "responses",
]

logger = logging.getLogger("sous.errors")


class ErrorBody(BaseModel):
    detail: str
    code: str


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError]


class ApiError(Exception):
    """Raised by entry points (HTTP concerns); rendered as `{detail, code}` with the given status.
    Use cases raise the domain exceptions of `sous_service.domain_errors` instead."""

    def __init__(self, status_code: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


def not_found(what: str, identifier: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} '{identifier}' not found")


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Render a pydantic location as `steps[2].agent_id`, dropping the request-part prefix."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_error(errors: list[FieldError]) -> JSONResponse:
    first = errors[0] if errors else FieldError(field="body", message="invalid input", type="value_error")
    body = ValidationErrorBody(detail=f"{first.field}: {first.message}", code="validation_error", errors=errors)
    return JSONResponse(status_code=422, content=body.model_dump())


# Each domain exception's status; a subclass takes its nearest listed ancestor's.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    InputInvalid: 422,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    RateLimited: 429,
    Unavailable: 503,
    DependencyFailed: 502,
    DomainError: 400,
}


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The HTTP answer to a domain refusal: status by class, `{detail, code, **extra}`, Retry-After if any."""
    if isinstance(exc, InputInvalid):
        return validation_error(exc.errors)
    status = next(DOMAIN_STATUS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_STATUS)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        status_code=status, content={"detail": exc.detail, "code": exc.code, **exc.extra}, headers=headers or None
    )


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": exc.detail, "code": exc.code, **exc.extra},
            headers=exc.headers or None,
        )

    @app.exception_handler(EventTooLarge)
    async def _event_too_large(_: Request, exc: EventTooLarge) -> JSONResponse:
        # The change would record an event the broker cannot carry: refused, nothing was written.
        return JSONResponse(status_code=413, content={"detail": str(exc), "code": "event_too_large"})

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(
                field=field_path(err.get("loc", ())),
                message=str(err.get("msg", "")),
                type=str(err.get("type", "")),
            )
            for err in exc.errors()
        ]
        return validation_error(errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": str(exc.detail), "code": code},
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            # The database or broker is briefly out of reach: the client may retry, nothing was committed.
            logger.warning("infrastructure unavailable on %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse(
                status_code=503,
                content={"detail": "temporarily unavailable, retry shortly", "code": "unavailable"},
                headers={"Retry-After": "1"},
            )
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error", "code": "internal_error"})


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid internal context / credentials"},
    403: {"model": ErrorBody, "description": "Forbidden"},
    404: {"model": ErrorBody, "description": "Not found in this workspace"},
    422: {"model": ValidationErrorBody, "description": "Invalid input, with field paths"},
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI error responses for a route: the common ones plus the given codes."""
    extra = {
        409: {"model": ErrorBody, "description": "Conflict"},
        429: {"model": ErrorBody, "description": "Limit reached"},
        400: {"model": ErrorBody, "description": "Bad request"},
    }
    out = dict(ERROR_RESPONSES)
    for code in codes:
        out[code] = extra.get(code, {"model": ErrorBody, "description": "Error"})
    return out
