"""
Errors of the HTTP service: one body shape and one table of statuses.

Every error answers ``{"error": <kind>, "message": <sentence>}``, plus ``field`` and
``rule`` for invalid input, ``ids`` for a conflict and ``retry_after`` when overloaded.
Library errors map through the same table as the ASGI endpoint (`ai_feedback.asgi`).
On MLflow's routes the body also carries ``error_code``, MLflow's name for the status,
which its client shows in the exception it raises.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ai_feedback.asgi import _error_body, _error_headers
from ai_feedback.exceptions import FeedbackError

__all__ = ["ApiError", "JSONBody", "install_handlers"]


class JSONBody(Response):
    """
    A JSON response encoded with orjson (datetimes as ISO 8601, any JSON value).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:  # noqa: ANN401 - any JSON value
        """
        Encode ``content``.
        """
        return orjson.dumps(content)


class ApiError(Exception):
    """
    An HTTP error with its status, kind and message.

    Args:
        status: The HTTP status.
        error: A short machine-readable kind (``unauthorized``, ``not_found``, ...).
        message: A sentence for people.
        headers: Extra response headers.
        extra: Extra fields of the body.
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,  # noqa: ANN401 - JSON fields
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra


_MLFLOW_PATH = re.compile(r"/api/[0-9.]+/mlflow/")
_MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "RESOURCE_CONFLICT",
    413: "INVALID_PARAMETER_VALUE",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def _response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str]
) -> JSONBody:
    if _MLFLOW_PATH.search(request.scope.get("path", "")):
        body["error_code"] = _MLFLOW_CODES.get(status, "INTERNAL_ERROR")
    return JSONBody(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return _response(
        request, exc.status, {"error": exc.error, "message": exc.message, **exc.extra}, exc.headers
    )


async def _feedback_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, FeedbackError)  # noqa: S101 - registered for FeedbackError only
    status, body = _error_body(exc)
    headers = {k.decode(): v.decode() for k, v in _error_headers(exc)}
    return _response(request, status, body, headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    field = ".".join(location) or "request"
    rule = str(first.get("msg", "is invalid"))
    body = {
        "error": "invalid",
        "message": f"Invalid {field!r}: {rule}.",
        "field": field,
        "rule": rule,
    }
    return _response(request, 422, body, {})


async def _http_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    kinds = {404: "not_found", 405: "method_not_allowed"}
    message = str(exc.detail)
    path = request.scope.get("path", "")
    if exc.status_code in kinds and _MLFLOW_PATH.search(path):
        message = (
            f"{request.method} {path} is not served: this service records MLflow "
            "assessments only (POST /api/3.0/mlflow/traces/{trace_id}/assessments)"
        )
    body = {"error": kinds.get(exc.status_code, "http_error"), "message": message}
    return _response(request, exc.status_code, body, dict(exc.headers or {}))


def install_handlers(app: FastAPI) -> None:
    """
    Answer every error of ``app`` with the service's error body.
    """
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(FeedbackError, _feedback_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
