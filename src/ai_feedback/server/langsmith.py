"""
LangSmith's feedback routes, so that an unmodified LangSmith SDK can send feedback here.

Point the client at the service (``api_url=``) with a key's secret as its API key
(``x-api-key``). Routes:

- ``GET /info``: an empty version, so that the client posts feedback one by one, and
  the batch settings a client reads (without them it warns on every start).
- ``POST /feedback``: ``create_feedback``; the run id becomes the item's ``trace_id``.
- ``POST /feedback/tokens``: ``create_presigned_feedback_token`` (a key with
  ``ingest``), or ``create_presigned_feedback_tokens`` with a list (one token per
  entry, at most 100); ``POST`` or ``GET /feedback/tokens/{id}``: ``create_feedback_from_token``,
  no key needed, for that run and feedback key only, until the token expires. The client
  chooses the token's id: minting again under a live token's id answers that token when
  it is the same (project, run and feedback key), else 409. An unknown or expired token
  is 401 before the body is read.

Feedback is mapped by `ai_feedback.peers.langsmith_feedback_payload`; errors name
LangSmith's fields (`ai_feedback.peers.langsmith_error`).

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

from fastapi import APIRouter, Depends, Query, Request

from ai_feedback._models import FeedbackFilter, FeedbackItem
from ai_feedback._validation import check_id
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.peers import (
    langsmith_error,
    langsmith_feedback_out,
    langsmith_feedback_payload,
    uuid_or_none,
)
from ai_feedback.server.auth import Principal, require, unauthorized
from ai_feedback.server.body import read_json
from ai_feedback.server.data import delete_one
from ai_feedback.server.errors import ApiError, JSONBody
from ai_feedback.server.schemas import (
    AcceptedOut,
    LangSmithInfoOut,
    PresignedOut,
    ReceiptOut,
    body_schema,
    errors,
)
from ai_feedback.server.service import bind_owner, check_query, service
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
    return {"version": "", "instance_flags": {}, "batch_ingest_config": _BATCH_INGEST}


# The client reads every one of these keys when /info has a batch_ingest_config (its
# defaults); without one it warns that run compression is not enabled.
_BATCH_INGEST = {
    "use_multipart_endpoint": False,
    "size_limit": 100,
    "size_limit_bytes": None,
    "scale_up_nthreads_limit": 16,
    "scale_up_qsize_trigger": 1000,
    "scale_down_nempty_trigger": 4,
}
_MAX_MINTS = 100


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
    body = await read_json(request)
    payload = bind_owner(langsmith_feedback_payload(body), principal)
    return JSONBody({"id": await _submit(request, payload, body)})


@router.get(
    "/feedback/{feedback_id}",
    response_model=dict[str, Any],
    responses=errors(401, 403, 404, 413, 422, 503),
    summary="LangSmith read_feedback",
)
async def read_feedback(
    request: Request,
    feedback_id: str,
    principal: Annotated[Principal, Depends(require("read"))],
) -> JSONBody:
    """
    Return one feedback of the key's project as LangSmith's ``Feedback``; 404 otherwise.
    """
    check_query(request)
    item = await _own_item(request, principal, feedback_id)
    return JSONBody(langsmith_feedback_out(item))


async def _own_item(request: Request, principal: Principal, feedback_id: str) -> FeedbackItem:
    """
    Return the key's project's item ``feedback_id`` (its writes read first).

    Raises:
        ApiError: 404 when there is none in the project (another project's is none too).
    """
    try:
        item = await service(request).store.get(feedback_id)  # type: ignore[attr-defined]
    except FeedbackValidationError as exc:
        raise exc.renamed("feedback_id") from None
    if not isinstance(item, FeedbackItem) or item.owner_id != principal.project:
        raise ApiError(404, "not_found", f"No feedback {feedback_id!r} in this project.")
    return item


_Values = Annotated[list[str] | None, Query()]


@router.get(
    "/feedback",
    response_model=list[dict[str, Any]],
    responses=errors(401, 403, 413, 422, 503),
    summary="LangSmith list_feedback",
)
async def list_feedback(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(require("read"))],
    run: _Values = None,
    key: _Values = None,
    source: _Values = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JSONBody:
    """
    List the project's feedback, newest first, as LangSmith's ``Feedback`` objects.

    ``run`` (repeatable) keeps the feedback of those runs, ``key`` and ``source``
    (repeatable) those keys and source types; ``offset`` and ``limit`` page (the SDK
    pages until a short page). Items whose id is not a UUID are left out (LangSmith
    ids are UUIDs).
    """
    check_query(request, "filter of list_feedback", lists=("run", "key", "source"))
    store = service(request).store
    project = principal.project
    try:
        filters = (
            [FeedbackFilter(owner_id=project, trace_id=r) for r in dict.fromkeys(run)]
            if run
            else [FeedbackFilter(owner_id=project)]
        )
    except FeedbackValidationError as exc:
        raise exc.renamed("run") from None
    keys, sources = set(key or ()), set(source or ())
    wanted = offset + limit
    found: list[tuple[Any, dict[str, Any]]] = []
    for where in filters:
        taken = 0
        async for item in store.scan(where):  # type: ignore[attr-defined]
            out = langsmith_feedback_out(item)
            if uuid_or_none(item.id) != item.id or (keys and out["key"] not in keys):
                continue
            kind = (out["feedback_source"] or {}).get("type", "api")
            if sources and kind not in sources:
                continue
            found.append(((item.created_at, item.id), out))
            taken += 1
            if taken >= wanted:  # newest first: the rest of this run cannot be in the page
                break
    found.sort(key=lambda pair: pair[0], reverse=True)
    return JSONBody([out for _, out in found[offset:wanted]])


_UPDATABLE = ("score", "value", "correction", "comment")
_RECOMPUTED = frozenset(f"langsmith_{field}" for field in ("score", "value", "correction"))


@router.patch(
    "/feedback/{feedback_id}",
    response_model=AcceptedOut,
    responses=errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
    summary="LangSmith update_feedback",
    openapi_extra=body_schema(
        dict[str, Any], description="score, value, correction, comment: the fields to change"
    ),
)
async def update_feedback(
    request: Request,
    feedback_id: str,
    principal: Annotated[Principal, Depends(require("ingest"))],
) -> JSONBody:
    """
    Change fields of one feedback of the key's project; answer its id (404 if none).

    Only the fields given change (``null`` clears one); the feedback keeps its id, run,
    session, time and the rest of its context and metadata. The new version replaces
    the stored one, as an update (see `SupportsReplace`).
    """
    check_query(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise FeedbackValidationError("feedback", "must be a JSON object", body)
    for name in body:
        if name not in _UPDATABLE:
            msg = f"is not a field update_feedback changes ({', '.join(_UPDATABLE)})"
            raise FeedbackValidationError(name, msg)
    item = await _own_item(request, principal, feedback_id)
    current = langsmith_feedback_out(item)
    key = item.metadata.get("key")
    merged = ({"key": key} if isinstance(key, str) else {}) | {f: current[f] for f in _UPDATABLE}
    merged |= body
    payload = langsmith_feedback_payload(merged)
    # What the mapping recomputes from the merged fields goes; everything else stays (its
    # source, key, LangSmith's trace id, extra, config, ...), the scale unless the score
    # or value changed.
    rescored = "score" in body or "value" in body
    kept = {
        k: v
        for k, v in item.metadata.items()
        if k not in _RECOMPUTED and not (k == "scale" and rescored)
    }
    payload["metadata"] = payload["metadata"] | kept
    payload["context"] = {k: v for k, v in item.context.items() if k != "comment"} | payload[
        "context"
    ]
    payload |= {"id": item.id, "created_at": item.created_at.isoformat()}
    try:
        await service(request).collector.submit_payload(payload, replace=True)
    except FeedbackValidationError as exc:
        raise langsmith_error(exc, merged) from None
    return JSONBody({"id": item.id})


@router.delete(
    "/feedback/{feedback_id}",
    response_model=ReceiptOut,
    responses=errors(401, 403, 422, 503),
    summary="LangSmith delete_feedback",
)
async def delete_feedback(
    request: Request,
    feedback_id: str,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> JSONBody:
    """
    Delete one feedback of the key's project (scope ``admin``); answer the receipt.
    """
    return await delete_one(request, principal, feedback_id, "feedback_id")


async def _submit(request: Request, payload: dict[str, Any], feedback: object) -> str:
    """
    Submit ``payload``, mapped from ``feedback``; errors name LangSmith's fields.
    """
    try:
        return await service(request).collector.submit_payload(payload)
    except FeedbackValidationError as exc:
        raise langsmith_error(exc, feedback) from None


@router.post(
    "/feedback/tokens",
    response_model=PresignedOut | list[PresignedOut],
    responses=_BODY_ERRORS,
    summary="LangSmith create_presigned_feedback_token(s)",
    openapi_extra=body_schema(
        dict[str, Any] | list[dict[str, Any]],
        description="run_id, feedback_key, expiry; or a list of them",
    ),
)
async def create_token(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Mint a presigned token for one run and feedback key; answer its id, URL and expiry.

    A list mints one token per entry and answers the list (all or none: an entry at
    fault is named by its index, ``[1].feedback_key``). Minting under the id of a live
    token answers that token when it is the same one (project, run and feedback key),
    and is a 409 conflict naming ``id`` otherwise.
    """
    body = await read_json(request)
    if not isinstance(body, list):
        return JSONBody(_keep(request, [_token_claims(request, principal, body)])[0])
    if not 0 < len(body) <= _MAX_MINTS:
        msg = f"must hold 1 to {_MAX_MINTS} tokens to mint"
        raise FeedbackValidationError("body", msg, len(body))
    checked = []
    for index, entry in enumerate(body):
        try:
            checked.append(_token_claims(request, principal, entry))
        except FeedbackValidationError as exc:
            raise exc.renamed(f"[{index}].{exc.field}") from None
    return JSONBody(_keep(request, checked))


def _token_claims(request: Request, principal: Principal, body: object) -> TokenClaims:
    """
    The claims of the token ``body`` asks for, checked.
    """
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("body", "must be a JSON object", body)
    run_id = check_id("run_id", body.get("run_id"))  # the trace id it becomes
    key = check_id("feedback_key", body.get("feedback_key"))  # the metadata key it becomes
    expires_at = _expiry(body, service(request).settings.token_max_seconds)
    token_id = str(body.get("id") or uuid.uuid4())
    try:
        token_id = str(uuid.UUID(token_id))
    except ValueError:
        raise FeedbackValidationError("id", "must be a UUID", token_id) from None
    return TokenClaims(
        project=principal.project,
        trace_id=run_id,
        expires_at=expires_at,
        token_id=token_id,
        feedback_key=key,
    )


def _keep(request: Request, wanted: list[TokenClaims]) -> list[dict[str, Any]]:
    """
    Keep the tokens ``wanted`` describes (or find the same live ones); answer their fields.

    All or none: nothing is kept when one of them cannot be.

    Raises:
        ApiError: 409 when a live token of another project, run or key has one's id;
            429 when too many tokens would be live.
    """
    tokens: dict[str, TokenClaims] = service(request).extras.setdefault(_TOKENS, {})
    _forget_expired(tokens)
    new: dict[str, TokenClaims] = {}
    answers = []
    for claims in wanted:
        token_id = claims.token_id
        known = new.get(token_id) or tokens.get(token_id)
        if known is None:
            new[token_id] = known = claims
        elif (known.project, known.trace_id, known.feedback_key) != (
            claims.project,
            claims.trace_id,
            claims.feedback_key,
        ):
            msg = (
                f"A presigned token with id {token_id!r} already exists for another project, "
                "run or feedback key; give a new token a new id."
            )
            raise ApiError(409, "conflict", msg, field="id", ids=[token_id])
        url = str(request.url_for("use_token_post", token_id=token_id))
        when = datetime.fromtimestamp(known.expires_at, UTC).isoformat()
        answers.append({"id": token_id, "url": url, "expires_at": when})
    if len(tokens) + len(new) > _MAX_TOKENS:
        raise ApiError(
            429, "overloaded", "Too many live presigned tokens.", headers={"Retry-After": "60"}
        )
    tokens.update(new)
    return answers


_UNITS = ("days", "hours", "minutes", "seconds")


def _expiry(body: Mapping[str, Any], longest: float) -> float:
    """
    The expiry (seconds since the epoch) of ``expires_at``, else ``expires_in``.
    """
    now = time.time()
    if body.get("expires_at") is not None:
        field, when = "expires_at", body["expires_at"]
        try:
            moment = datetime.fromisoformat(when)
        except (TypeError, ValueError):
            raise FeedbackValidationError(field, "must be an ISO 8601 time", when) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp() - now
    else:
        field, delta = "expires_in", body.get("expires_in") or {"hours": 3}
        if not isinstance(delta, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in delta.items()
            if k in _UNITS
        ):
            msg = "must be an object of numbers: {days, hours, minutes, seconds}"
            raise FeedbackValidationError(field, msg, delta)
        try:
            seconds = timedelta(**{k: v for k, v in delta.items() if k in _UNITS}).total_seconds()
        except OverflowError:
            raise FeedbackValidationError(field, "is too long", delta) from None
    if not 0 < seconds <= longest:
        msg = f"must be in the future, at most {longest:g} seconds ahead"
        raise FeedbackValidationError(field, msg, body.get(field, seconds))
    return now + seconds


def _forget_expired(tokens: dict[str, TokenClaims]) -> None:
    now = time.time()
    for token_id in [t for t, c in tokens.items() if c.expires_at <= now]:
        del tokens[token_id]


async def _claims(request: Request, token_id: str) -> TokenClaims:
    """
    The claims of the live presigned token ``token_id``.

    A dependency, so that it runs before the body is read or the query is checked.

    Raises:
        ApiError: 401 when there is no such token, or it has expired.
    """
    tokens: dict[str, TokenClaims] = service(request).extras.get(_TOKENS, {})
    claims = tokens.get(token_id)
    if claims is None:
        why = "no such presigned token"
    elif claims.expires_at <= time.time():
        why = "the presigned token has expired"
    else:
        return claims
    raise unauthorized(why)


async def _use(request: Request, claims: TokenClaims, body: Mapping[str, Any]) -> JSONBody:
    feedback = {**body, "run_id": claims.trace_id, "key": claims.feedback_key}
    payload = langsmith_feedback_payload(feedback)
    principal = Principal(claims.project, frozenset(), token=claims)
    return JSONBody({"id": await _submit(request, bind_owner(payload, principal), feedback)})


@router.post(
    "/feedback/tokens/{token_id}",
    name="use_token_post",
    response_model=AcceptedOut,
    responses=_BODY_ERRORS,
    summary="LangSmith create_feedback_from_token",
    openapi_extra=body_schema(dict[str, Any], description="score, value, correction, comment"),
)
async def use_token_post(
    request: Request, claims: Annotated[TokenClaims, Depends(_claims)]
) -> JSONBody:
    """
    Record feedback with a presigned token (no key): score, value, correction, comment.
    """
    body = await read_json(request)
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("body", "must be a JSON object", body)
    allowed = {
        k: body[k] for k in ("score", "value", "correction", "comment", "metadata") if k in body
    }
    return await _use(request, claims, allowed)


@router.get(
    "/feedback/tokens/{token_id}",
    response_model=AcceptedOut,
    responses=errors(401, 413, 422, 429, 503),
    summary="LangSmith presigned feedback by GET",
)
async def use_token_get(
    request: Request,
    claims: Annotated[TokenClaims, Depends(_claims)],
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
    return await _use(request, claims, {k: v for k, v in given.items() if v is not None})
