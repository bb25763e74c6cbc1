"""
LangSmith's feedback routes, so that an unmodified LangSmith SDK can send feedback here.

Point the client at the service (``api_url=``) with a key's secret as its API key
(``x-api-key``). Routes:

- ``GET /info``: an empty version, so that the client posts feedback one by one.
- ``POST /feedback``: ``create_feedback``; the run id becomes the item's ``trace_id``.
- ``POST /feedback/tokens``: ``create_presigned_feedback_token`` (a key with
  ``ingest``); ``POST`` or ``GET /feedback/tokens/{id}``: ``create_feedback_from_token``,
  no key needed, for that run and feedback key only, until the token expires.

Feedback is mapped by `ai_feedback.peers.langsmith_feedback_payload`.

Presigned tokens are kept in the memory of the process that minted them (their ids must
be UUIDs, so they cannot carry a signature): with several workers, use the native
``/v1/tokens``, which is stateless.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.peers import langsmith_feedback_payload
from ai_feedback.server.auth import Principal, require
from ai_feedback.server.body import read_json
from ai_feedback.server.errors import ApiError, JSONBody
from ai_feedback.server.schemas import (
    AcceptedOut,
    LangSmithInfoOut,
    PresignedOut,
    body_schema,
    errors,
)
from ai_feedback.server.service import bind_owner, service
from ai_feedback.server.tokens import TokenClaims

__all__ = ["router"]

router = APIRouter(tags=["langsmith"])
_TOKENS = "langsmith_tokens"
_BODY_ERRORS = errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 503)
_MAX_TOKENS = 100_000


@router.get("/info", response_model=LangSmithInfoOut, summary="LangSmith server information")
async def info() -> dict[str, Any]:
    """
    Tell LangSmith clients to send feedback with POST /feedback.
    """
    return {"version": "", "instance_flags": {}}


@router.post(
    "/feedback",
    response_model=AcceptedOut,
    responses=_BODY_ERRORS,
    summary="LangSmith create_feedback",
    openapi_extra=body_schema(dict[str, Any], description="A LangSmith FeedbackCreate"),
)
async def create_feedback(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Record one LangSmith feedback; answer with its id.
    """
    payload = bind_owner(langsmith_feedback_payload(await read_json(request)), principal)
    item_id = await service(request).collector.submit_payload(payload)
    return JSONBody({"id": item_id})


@router.post(
    "/feedback/tokens",
    response_model=PresignedOut,
    responses=_BODY_ERRORS,
    summary="LangSmith create_presigned_feedback_token",
    openapi_extra=body_schema(dict[str, Any], description="run_id, feedback_key, expiry"),
)
async def create_token(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Mint a presigned token for one run and feedback key; answer its id, URL and expiry.
    """
    body = await read_json(request)
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("body", "must be a JSON object", body)
    run_id, key = body.get("run_id"), body.get("feedback_key")
    if not isinstance(run_id, str) or not run_id:
        raise FeedbackValidationError("run_id", "is required", run_id)
    if not isinstance(key, str) or not key:
        raise FeedbackValidationError("feedback_key", "is required", key)
    expires_at = _expiry(body, service(request).settings.token_max_seconds)
    token_id = str(body.get("id") or uuid.uuid4())
    try:
        token_id = str(uuid.UUID(token_id))
    except ValueError:
        raise FeedbackValidationError("id", "must be a UUID", token_id) from None
    tokens: dict[str, TokenClaims] = service(request).extras.setdefault(_TOKENS, {})
    _forget_expired(tokens)
    tokens[token_id] = TokenClaims(
        project=principal.project,
        trace_id=run_id,
        expires_at=expires_at,
        token_id=token_id,
        feedback_key=key,
    )
    url = str(request.url_for("use_token_post", token_id=token_id))
    when = datetime.fromtimestamp(expires_at, UTC).isoformat()
    return JSONBody({"id": token_id, "url": url, "expires_at": when})


def _expiry(body: Mapping[str, Any], longest: float) -> float:
    now = time.time()
    if body.get("expires_at") is not None:
        try:
            moment = datetime.fromisoformat(str(body["expires_at"]))
        except ValueError:
            raise FeedbackValidationError(
                "expires_at", "must be ISO 8601", body["expires_at"]
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp() - now
    else:
        delta = body.get("expires_in") or {"hours": 3}
        if not isinstance(delta, Mapping):
            raise FeedbackValidationError("expires_in", "must be {days, hours, minutes}", delta)
        try:
            seconds = timedelta(
                **{
                    k: float(v)
                    for k, v in delta.items()
                    if k in ("days", "hours", "minutes", "seconds")
                }
            ).total_seconds()
        except (TypeError, ValueError, OverflowError):
            raise FeedbackValidationError("expires_in", "must hold numbers", delta) from None
    if not 0 < seconds <= longest:
        raise FeedbackValidationError(
            "expires_in", f"must be positive and at most {longest:g} seconds", seconds
        )
    return now + seconds


def _forget_expired(tokens: dict[str, TokenClaims]) -> None:
    now = time.time()
    for token_id in [t for t, c in tokens.items() if c.expires_at <= now]:
        del tokens[token_id]
    if len(tokens) >= _MAX_TOKENS:
        raise ApiError(
            429, "overloaded", "Too many live presigned tokens.", headers={"Retry-After": "60"}
        )


async def _use(request: Request, token_id: str, body: Mapping[str, Any]) -> JSONBody:
    tokens: dict[str, TokenClaims] = service(request).extras.get(_TOKENS, {})
    claims = tokens.get(token_id)
    if claims is None:
        raise ApiError(401, "unauthorized", "Not authorized: no such presigned token.")
    if claims.expires_at <= time.time():
        raise ApiError(401, "unauthorized", "Not authorized: the presigned token has expired.")
    feedback = {**body, "run_id": claims.trace_id, "key": claims.feedback_key}
    payload = langsmith_feedback_payload(feedback)
    principal = Principal(claims.project, frozenset(), token=claims)
    item_id = await service(request).collector.submit_payload(bind_owner(payload, principal))
    return JSONBody({"id": item_id})


@router.post(
    "/feedback/tokens/{token_id}",
    name="use_token_post",
    response_model=AcceptedOut,
    responses=_BODY_ERRORS,
    summary="LangSmith create_feedback_from_token",
    openapi_extra=body_schema(dict[str, Any], description="score, value, correction, comment"),
)
async def use_token_post(request: Request, token_id: str) -> JSONBody:
    """
    Record feedback with a presigned token (no key): score, value, correction, comment.
    """
    body = await read_json(request)
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("body", "must be a JSON object", body)
    allowed = {
        k: body[k] for k in ("score", "value", "correction", "comment", "metadata") if k in body
    }
    return await _use(request, token_id, allowed)


@router.get(
    "/feedback/tokens/{token_id}",
    response_model=AcceptedOut,
    responses=errors(401, 413, 422, 429, 503),
    summary="LangSmith presigned feedback by GET",
)
async def use_token_get(
    request: Request,
    token_id: str,
    *,
    score: float | None = None,
    value: str | None = None,
    comment: str | None = None,
    correction: str | None = None,
) -> JSONBody:
    """
    Record feedback with a presigned token given as query parameters.
    """
    given = {"score": score, "value": value, "comment": comment, "correction": correction}
    return await _use(request, token_id, {k: v for k, v in given.items() if v is not None})
