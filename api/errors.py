"""The one error handler: every failure becomes `{"error": {"code", "message", "details"}}` with a fixed code.

Typed `indexer`/`search` errors map to status codes here; FastAPI's validation errors become 422 with one
detail per field; anything unexpected is a 500 whose body names only a reference id (the traceback goes to
the server log, never to the client).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.schemas import ErrorBody, ErrorDetail, ErrorPublic
from indexer.errors import (
    CatalogError,
    EncoderUnavailableError,
    IndexMismatchError,
    IndexNotFoundError,
    MediaError,
    NotFoundError,
    RecordError,
    VersionNotReachedError,
    VisualIntentError,
    WriteConflictError,
)

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}
# Typed errors from the library layers, most specific first.
TYPED: tuple[tuple[type[VisualIntentError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (RecordError, 422, "invalid_record"),
    (CatalogError, 422, "invalid_records"),
    (MediaError, 422, "invalid_media"),
    (IndexMismatchError, 409, "index_mismatch"),
    (IndexNotFoundError, 503, "index_unavailable"),
    (VersionNotReachedError, 409, "version_not_reached"),  # not yet: retry, or ask another replica
    (WriteConflictError, 409, "write_conflict"),  # another replica wrote the same rows: retry the write
    (EncoderUnavailableError, 503, "encoder_unavailable"),
    (VisualIntentError, 400, "bad_request"),
)


class ApiError(Exception):
    """An error the API answers on purpose, with a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = list(details)
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, details: Sequence[ErrorDetail] = (), headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorPublic(error=ErrorBody(code=code, message=message, details=list(details)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=dict(headers or {}))


def record_details(errors: Sequence[RecordError]) -> list[ErrorDetail]:
    return [ErrorDetail(field=e.field, reason=e.reason, line=e.line, record_id=e.record_id) for e in errors]


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [ErrorDetail(field=_field(e.get("loc", ())), reason=str(e.get("msg", "invalid"))) for e in exc.errors()]
    first = f"{details[0].field}: {details[0].reason}" if details else "invalid request"
    return error_response(422, "invalid_request", f"invalid request ({first})", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such resource: {request.method} {request.url.path}"
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
        message = f"{request.method} is not allowed here (allowed: {headers['Allow']})"
    return error_response(exc.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first matching route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _typed_error(request: Request, exc: Exception) -> JSONResponse:
    for cls, status, code in TYPED:
        if isinstance(exc, cls):
            details = record_details(exc.errors) if isinstance(exc, CatalogError) else []
            if isinstance(exc, RecordError):
                details = record_details([exc])
            return error_response(status, code, str(exc), details)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", f"internal error (reference {ref}); see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(VisualIntentError, _typed_error)
    app.add_exception_handler(Exception, _unexpected)


DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or unknown API key",
    403: "The API key lacks the required scope",
    404: "Not found",
    409: "The index and the running service disagree (encoders)",
    413: "Request body, batch or image too large",
    422: "Invalid request or records",
    500: "Internal error (no details leak)",
    503: "Index or encoder unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all with the one error shape."""
    return {code: {"model": ErrorPublic, "description": DESCRIPTIONS[code]} for code in codes}
