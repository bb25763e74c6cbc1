"""
Reading a request body: JSON only, bounded in size and in time.

Routes read their bodies themselves, after authentication: 415 for a content type other
than JSON (a web page cannot post JSON cross-site without a CORS preflight, but it can
post text/plain or a form), 413 past ``max_body_bytes`` (from Content-Length at once,
else while reading), 408 when the body does not arrive within ``body_timeout_seconds``,
400 for malformed JSON, an empty body included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from ai_feedback._validation import json_loads
from ai_feedback.server._state import running
from ai_feedback.server.errors import ApiError

__all__ = ["read_body", "read_json"]


async def read_json(request: Request) -> Any:  # noqa: ANN401 - any JSON value
    """
    Return the request's JSON body, within the service's limits.

    Raises:
        ApiError: 415, 413, 408 or 400 as described in the module.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.partition(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        msg = f"The body must be JSON (Content-Type: application/json), not {media or 'none'!r}."
        raise ApiError(415, "unsupported_media_type", msg)
    body = await read_body(request)
    try:
        return json_loads(body)
    except orjson.JSONDecodeError as exc:
        what = "is empty" if not body else f"is not valid JSON ({exc})"
        raise ApiError(400, "bad_json", f"The body {what}.") from None


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """
    Return the request's body, within ``limit`` bytes (at most ``max_body_bytes``) and time.

    Raises:
        ApiError: 413, 408 or 400 (the client went away) as described in the module.
    """
    settings = running(request).settings
    limit = settings.max_body_bytes if limit is None else min(limit, settings.max_body_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    try:
        async with asyncio.timeout(settings.body_timeout_seconds):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise ClientDisconnect  # noqa: TRY301 - handled with the other endings
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        msg = f"The body did not arrive within {settings.body_timeout_seconds:g} s."
        raise ApiError(408, "timeout", msg, headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "The client went away mid-body.") from None
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    msg = f"The body is larger than {limit:,} bytes (server.max_body_bytes)."
    return ApiError(413, "too_large", msg, headers={"Connection": "close"})
