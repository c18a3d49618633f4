"""The API's one error shape: ``{"error": {"code": "<slug>", "message": "<text>"}}``
with the matching HTTP status. `code` is a stable machine-readable slug; `message`
is for people and may change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# HTTP status -> default error code
CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "tx_rejected",
    429: "busy",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by a handler (or a body reader) to answer with an error."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {**extra, "error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=dict(headers or {}))


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


_HTTP_MESSAGES = {
    404: "no such path",
    405: "method not allowed on this path",
}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTPExceptions (unknown path, wrong method) in our shape."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status) or str(exc.detail)
    if status == 404:
        message = f"no such path: {request.url.path[:200]}"
    return error_response(status, CODES.get(status, "error"), message, exc.headers)
