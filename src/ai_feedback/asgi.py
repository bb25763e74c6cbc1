"""
ASGI request capture and a feedback endpoint, for Starlette, FastAPI or any ASGI app.

`FeedbackCaptureMiddleware` records each HTTP request's body and its response under a
new context id, returned to the client in the ``X-Feedback-Context-Id`` header; feedback
later submitted with that id as ``trace_id`` carries the capture in
``context["captured"]``. `FeedbackEndpoint` accepts feedback as JSON, asking an optional
``authorize`` callback first.

Both take the collector itself or a function of the ASGI scope that returns it, such as
``from_state("feedback")`` for a collector put in the lifespan state.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

import orjson

from ai_feedback._models import new_id
from ai_feedback._validation import json_loads
from ai_feedback.capture import Capture, _current
from ai_feedback.collector import FeedbackCollector
from ai_feedback.exceptions import (
    FeedbackAuthorizationError,
    FeedbackConflictError,
    FeedbackError,
    FeedbackOverloadedError,
    FeedbackProcessingError,
    FeedbackRejectedError,
    FeedbackStorageError,
    FeedbackTooLargeError,
    FeedbackValidationError,
)

__all__ = [
    "CONTEXT_HEADER",
    "Authorize",
    "FeedbackCaptureMiddleware",
    "FeedbackEndpoint",
    "FeedbackRequest",
    "from_state",
]

_LOG = logging.getLogger("ai_feedback")
CONTEXT_HEADER = "X-Feedback-Context-Id"

Scope: TypeAlias = MutableMapping[str, Any]
"""An ASGI connection scope."""
Message: TypeAlias = MutableMapping[str, Any]
"""An ASGI message."""
Receive: TypeAlias = Callable[[], Awaitable[Message]]
"""The ASGI receive callable."""
Send: TypeAlias = Callable[[Message], Awaitable[None]]
"""The ASGI send callable."""
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI application."""
CollectorSource: TypeAlias = FeedbackCollector | Callable[[Scope], FeedbackCollector]
"""A collector, or a function returning the collector for a scope."""


def from_state(key: str) -> Callable[[Scope], FeedbackCollector]:
    """
    Return a function that takes the collector from the lifespan state under ``key``.
    """

    def get(scope: Scope) -> FeedbackCollector:
        state = scope.get("state") or {}
        collector = state.get(key)
        if not isinstance(collector, FeedbackCollector):
            msg = f"the lifespan state has no FeedbackCollector under {key!r}"
            raise FeedbackValidationError("state", msg)
        return collector

    return get


def _collector(source: CollectorSource, scope: Scope) -> FeedbackCollector:
    return source if isinstance(source, FeedbackCollector) else source(scope)


@dataclass(frozen=True, slots=True)
class FeedbackRequest:
    """
    What ``authorize`` sees of an HTTP request.

    Args:
        method: The HTTP method.
        path: The request path.
        headers: Header names (lower case) to values.
        client: ``(host, port)`` of the peer, when known.
        scope: The raw ASGI scope.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    client: tuple[str, int] | None
    scope: Scope

    @classmethod
    def from_scope(cls, scope: Scope) -> FeedbackRequest:
        """
        Build the request view of an ASGI HTTP scope.
        """
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        return cls(
            scope.get("method", "GET"),
            scope.get("path", "/"),
            headers,
            (client[0], client[1]) if client else None,
            scope,
        )


class Authorize(Protocol):
    """
    **Protocol:** decides whether a feedback submission is allowed (sync or async).

    Return False (or raise `FeedbackAuthorizationError`) to deny.
    """

    def __call__(
        self, *, request: FeedbackRequest | None, payload: Mapping[str, Any]
    ) -> bool | Awaitable[bool]:
        """
        Return True to allow the submission.
        """
        ...


# One table maps errors to HTTP statuses; the first matching class wins.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (FeedbackAuthorizationError, 403, "forbidden"),
    (FeedbackTooLargeError, 413, "too_large"),
    (FeedbackValidationError, 422, "invalid"),
    (FeedbackRejectedError, 422, "rejected"),
    (FeedbackProcessingError, 500, "processing_failed"),
    (FeedbackConflictError, 409, "conflict"),
    (FeedbackOverloadedError, 429, "overloaded"),
    (FeedbackStorageError, 503, "storage_unavailable"),
    (FeedbackError, 503, "unavailable"),
)


def _error_body(exc: FeedbackError) -> tuple[int, dict[str, Any]]:
    status, kind = next((s, k) for cls, s, k in _STATUS if isinstance(exc, cls))
    body: dict[str, Any] = {"error": kind, "message": str(exc)}
    if isinstance(exc, FeedbackValidationError):
        body.update(field=exc.field, rule=exc.rule)
    if isinstance(exc, FeedbackProcessingError):
        body.update(step=exc.step, reason=exc.reason)
    if isinstance(exc, FeedbackConflictError):
        body.update(ids=list(exc.ids))
    if isinstance(exc, FeedbackOverloadedError):
        body.update(retry_after=exc.retry_after)
    return status, body


def _error_headers(exc: FeedbackError) -> list[tuple[bytes, bytes]]:
    if isinstance(exc, FeedbackOverloadedError):
        return [(b"retry-after", str(math.ceil(exc.retry_after)).encode())]
    return []


async def _respond(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]]
) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class FeedbackEndpoint:
    """
    An ASGI app that records feedback POSTed as JSON; mount it in any framework.

    The body is what `FeedbackCollector.submit_payload` takes. Answers ``202`` with
    ``{"id": ...}``; errors answer a JSON body with ``error`` and ``message`` (plus
    ``field`` and ``rule`` for validation): 403 denied, 413 too large, 422 invalid or
    rejected by a step, 405 not POST, 500 a step failed, 503 storage unavailable.

    Args:
        collector: The collector, or a function of the scope returning it.
        authorize: Called before anything is processed; False or
            `FeedbackAuthorizationError` denies.
        max_body_bytes: Largest accepted body.
    """

    def __init__(
        self,
        collector: CollectorSource,
        *,
        authorize: Authorize | None = None,
        max_body_bytes: int = 1_000_000,
    ) -> None:
        self._collector = collector
        self._authorize = authorize
        self._max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"<FeedbackEndpoint authorize={self._authorize!r}>"

    async def handle(
        self,
        payload: Mapping[str, Any],
        *,
        request: FeedbackRequest | None = None,
        collector: FeedbackCollector | None = None,
    ) -> dict[str, str]:
        """
        Authorize, then record ``payload``; return ``{"id": ...}``.

        Use this from a route of your framework when you parse the body yourself.

        Raises:
            FeedbackAuthorizationError: ``authorize`` denied the submission; nothing
                was validated or processed.
            FeedbackValidationError: The payload is invalid.
        """
        if self._authorize is not None:
            allowed = self._authorize(request=request, payload=payload)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                msg = "The authorize callback denied this feedback submission."
                raise FeedbackAuthorizationError(msg)
        if collector is None:
            if not isinstance(self._collector, FeedbackCollector):
                msg = "needs the request's scope to find the collector; pass collector="
                raise FeedbackValidationError("collector", msg)
            collector = self._collector
        item_id = await collector.submit_payload(payload)
        return {"id": item_id}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """
        Serve one ASGI HTTP request.
        """
        if scope["type"] != "http":
            return
        if scope.get("method") != "POST":
            await _respond(send, 405, {"error": "method_not_allowed"}, [(b"allow", b"POST")])
            return
        body = await _read_body(receive, self._max_body_bytes)
        if body is None:
            limit = self._max_body_bytes
            await _respond(send, 413, {"error": "too_large", "message": f"over {limit} bytes"}, [])
            return
        try:
            payload = json_loads(body or b"null")
        except orjson.JSONDecodeError as exc:
            await _respond(send, 400, {"error": "bad_json", "message": str(exc)}, [])
            return
        try:
            if not isinstance(payload, Mapping):
                raise FeedbackValidationError("payload", "must be a JSON object", payload)
            result = await self.handle(
                payload,
                request=FeedbackRequest.from_scope(scope),
                collector=_collector(self._collector, scope),
            )
        except FeedbackError as exc:
            status, error = _error_body(exc)
            await _respond(send, status, error, _error_headers(exc))
            return
        await _respond(send, 202, result, [])


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class FeedbackCaptureMiddleware:
    """
    ASGI middleware capturing each HTTP request's input and output under a context id.

    The id is new for every request, available to handlers through
    `ai_feedback.capture.current_context_id` and sent back in the
    ``X-Feedback-Context-Id`` response header. The capture holds the request body
    (parsed when it is JSON) as input, the response body as output, the status and query
    string in ``extra``, and the exception when the app raised. Capture problems are
    logged and never break the request.

    Args:
        app: The wrapped ASGI app.
        collector: The collector whose capture store keeps the captures, or a function
            of the scope returning it (e.g. ``from_state("feedback")``).
        paths: Capture only paths starting with one of these (all when None).
        exclude_paths: Never capture paths starting with one of these.
        max_body_bytes: Most bytes of each body kept.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        collector: CollectorSource,
        paths: tuple[str, ...] | None = None,
        exclude_paths: tuple[str, ...] = (),
        max_body_bytes: int = 64_000,
    ) -> None:
        self.app = app
        self._collector = collector
        self._paths = paths
        self._exclude = exclude_paths
        self._max_body = max_body_bytes

    def _wanted(self, scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path = str(scope.get("path", ""))
        if self._paths is not None and not path.startswith(self._paths):
            return False
        return not (self._exclude and path.startswith(self._exclude))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """
        Run the app, capturing the exchange.
        """
        if not self._wanted(scope):
            await self.app(scope, receive, send)
            return
        context_id = new_id()
        request_body = bytearray()
        response_body = bytearray()
        response: dict[str, Any] = {}
        limit = self._max_body

        async def capture_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) <= limit:
                request_body.extend(message.get("body", b"")[: limit + 1 - len(request_body)])
            return message

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message.get("headers", [])
                message["headers"] = [
                    *message.get("headers", []),
                    (CONTEXT_HEADER.lower().encode(), context_id.encode()),
                ]
            elif message["type"] == "http.response.body" and len(response_body) <= limit:
                response_body.extend(message.get("body", b"")[: limit + 1 - len(response_body)])
            await send(message)

        token = _current.set(context_id)
        started, started_at = time.perf_counter(), datetime.now(UTC)
        error: BaseException | None = None
        try:
            await self.app(scope, capture_receive, capture_send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _current.reset(token)
            self._record(
                scope,
                context_id,
                started_at,
                (time.perf_counter() - started) * 1000,
                (bytes(request_body), _content_type(scope.get("headers", []))),
                (bytes(response_body), _content_type(response.get("headers", []))),
                response.get("status"),
                error,
            )

    def _record(  # noqa: PLR0917 - one call site, flattened for clarity
        self,
        scope: Scope,
        context_id: str,
        started_at: datetime,
        duration_ms: float,
        request: tuple[bytes, str],
        response: tuple[bytes, str],
        status: int | None,
        error: BaseException | None,
    ) -> None:
        try:
            captures = _collector(self._collector, scope).captures
            extra: dict[str, Any] = {"status": status}
            query = scope.get("query_string", b"")
            if query:
                extra["query"] = query.decode("latin-1")
            captures.record(
                Capture(
                    context_id=context_id,
                    name=f"{scope.get('method', 'GET')} {scope.get('path', '/')}",
                    input=captures.bounded(_decode(*request, self._max_body)),
                    output=captures.bounded(_decode(*response, self._max_body)),
                    error=None if error is None else repr(error)[: captures.max_chars],
                    started_at=started_at,
                    duration_ms=duration_ms,
                    extra=extra,
                )
            )
        except Exception:  # noqa: BLE001 - capture must never break the host app
            _LOG.exception("Capturing request %s failed", context_id)


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.decode("latin-1").lower()
    return ""


def _decode(body: bytes, content_type: str, limit: int) -> Any:  # noqa: ANN401 - JSON value
    if not body:
        return None
    if len(body) > limit:
        return body[:limit].decode("utf-8", "replace") + "... [truncated]"
    if "json" in content_type:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return body.decode("utf-8", "replace")
