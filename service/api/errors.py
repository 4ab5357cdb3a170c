"""Domain errors → ``{"error": {"code", "message"}}`` responses, in one place."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import FaceRecError, Overloaded

log = logging.getLogger(__name__)

# Stable codes for failures that do not start as domain errors
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(FaceRecError):
    """An HTTP-level error raised by the API layer itself (auth, parsing)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers or None)


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceRecError)
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    elif exc.status == 429:  # service.api.ratelimit.RateLimited
        headers["Retry-After"] = str(max(1, math.ceil(getattr(exc, "retry_after_s", 1.0))))
    if exc.status == 401:
        headers["WWW-Authenticate"] = "ApiKey"
    if exc.status >= 500 and not isinstance(exc, Overloaded):
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc.status, exc.code, exc.message, **headers)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    return error_response(exc.status_code, code, str(exc.detail), **headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; the request was not completed")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FaceRecError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for each status."""
    described = {
        400: "The input could not be read (invalid image, bad base64, malformed body)",
        401: "No API key, or an unknown one",
        403: "The key lacks the scope this route needs",
        404: "No such identity or face",
        409: "Conflicts with the gallery's state (e.g. duplicate external_id)",
        413: "Request body, image bytes or pixels over the configured limits",
        415: "Not a JPEG, PNG, WebP or BMP image, or an unsupported content type",
        422: "Valid input with nothing to work on (no face, too many faces), or invalid parameters",
        429: "This key's rate limit is exceeded: retry after Retry-After seconds",
        503: "Overloaded (retry after Retry-After seconds) or models not ready",
        504: "The request took longer than the configured request timeout",
    }
    return {
        s: {
            "description": described.get(s, "Error"),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for s in statuses
    }
