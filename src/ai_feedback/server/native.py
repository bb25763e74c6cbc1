"""
The native API under ``/v1``: submit, batch, get, list, stats and browser tokens.

Every route authenticates first (`require`), writes as the caller's project and reads
only that project's items: another project's item is 404, as if it did not exist.
"""

from __future__ import annotations

import base64
import operator
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError

from ai_feedback._models import Cursor, FeedbackFilter, FeedbackItem, check_cursor
from ai_feedback._validation import MAX_WINDOW_HOURS, check_id, check_optional_id
from ai_feedback.asgi import _error_body
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.server.auth import Principal, authorize, require
from ai_feedback.server.body import read_json
from ai_feedback.server.errors import ApiError, JSONBody
from ai_feedback.server.schemas import (
    AcceptedOut,
    BatchIn,
    BatchOut,
    FeedbackIn,
    ItemOut,
    PageOut,
    StatsOut,
    TokenIn,
    TokenOut,
    body_schema,
    errors,
)
from ai_feedback.server.service import Moment, bind_owner, check_query, service
from ai_feedback.server.tokens import TokenClaims, mint, new_token_id

__all__ = ["add_submissions", "decode_cursor", "encode_cursor", "item_out", "router"]

router = APIRouter(prefix="/v1", tags=["feedback"])

_ERRORS = errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 503)
_READ_ERRORS = errors(401, 403, 422, 503)
_Text = Annotated[str | None, Query(min_length=1, max_length=256)]
_Type = Annotated[Literal["rating", "text", "correction", "label"] | None, Query()]


def item_out(item: FeedbackItem) -> dict[str, Any]:
    """
    Return the JSON form of a stored item.
    """
    return {
        "id": item.id,
        "type": item.feedback_type.value,
        "value": item.value,
        "context": item.context,
        "metadata": item.metadata,
        "created_at": item.created_at,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(item: FeedbackItem) -> str:
    """
    Return the opaque cursor that continues after ``item``.
    """
    micros = (item.created_at - _EPOCH) // _MICROSECOND  # exact for years 1-9999, unlike a float
    return base64.urlsafe_b64encode(orjson.dumps([micros, item.id])).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Cursor:
    """
    Return the position a cursor from `encode_cursor` stands for.

    Raises:
        FeedbackValidationError: The cursor was not made by this service.
    """
    try:
        micros, item_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = _EPOCH + operator.index(micros) * _MICROSECOND  # a float is a TypeError
    except (ValueError, TypeError, OverflowError, OSError):
        msg = "is not a cursor this service returned"
        raise FeedbackValidationError("cursor", msg, cursor) from None
    try:
        checked = check_cursor((moment, item_id))
    except FeedbackValidationError:
        msg = "is not a cursor this service returned"
        raise FeedbackValidationError("cursor", msg, cursor) from None
    assert checked is not None  # noqa: S101 - a pair was given
    return checked


async def submit(request: Request) -> JSONBody:
    """
    Accept one item (with an API key, or a browser token for its trace); 202 with its id.
    """
    principal = authorize(request, "ingest", token=True)
    payload = bind_owner(await read_json(request), principal)
    item_id = await service(request).collector.submit_payload(payload)
    return JSONBody({"id": item_id}, status_code=202)


async def submit_batch(request: Request) -> JSONBody:
    """
    Accept each valid item of the batch; 207 with one result per item, in order.
    """
    principal = authorize(request, "ingest")
    body = await read_json(request)
    items = body.get("items") if isinstance(body, dict) else None
    for name in body if isinstance(body, dict) else ():
        if name != "items":
            raise FeedbackValidationError(str(name), "is not a field of a batch (known: items)")
    if not isinstance(items, list) or not items:
        raise FeedbackValidationError("items", "must be a non-empty list of feedback objects")
    limit = service(request).settings.batch_max_items
    if len(items) > limit:
        msg = f"must hold at most {limit} items (server.batch_max_items)"
        raise FeedbackValidationError("items", msg, len(items))
    bound: list[dict[str, Any] | FeedbackValidationError] = []
    for payload in items:
        try:
            bound.append(bind_owner(payload, principal))
        except FeedbackValidationError as exc:  # named as in the item, as the other errors
            bound.append(exc)
    valid = [p for p in bound if isinstance(p, dict)]
    outcomes = iter(await service(request).collector.submit_payloads(valid))
    results: list[dict[str, Any]] = []
    for index, entry in enumerate(bound):
        outcome = entry if isinstance(entry, FeedbackValidationError) else next(outcomes)
        if isinstance(outcome, str):
            results.append({"index": index, "status": "accepted", "id": outcome})
        else:
            error = _error_body(outcome)[1]  # invalid, too_large, conflict, rejected, ...
            results.append({"index": index, "status": "rejected", "error": error})
    accepted = sum(r["status"] == "accepted" for r in results)
    body_out = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return JSONBody(body_out, status_code=207)


@router.get(
    "/feedback/{item_id:path}",  # an id may hold a slash (sent as %2F)
    response_model=ItemOut,
    responses=errors(401, 403, 404, 422, 503),
    summary="Get one item",
)
async def get_item(
    request: Request,
    item_id: Annotated[str, Path(min_length=1, max_length=256)],
    principal: Annotated[Principal, Depends(require("read"))],
) -> JSONBody:
    """
    Return the item, or 404 when it does not exist or belongs to another project.
    """
    check_query(request)
    store = service(request).store
    item = await store.get(item_id)  # type: ignore[attr-defined]
    if item is None or item.owner_id != principal.project:
        raise ApiError(404, "not_found", f"No feedback {item_id!r} in this project.")
    return JSONBody(item_out(item))


@router.get(
    "/feedback",
    response_model=PageOut,
    responses=_READ_ERRORS,
    summary="List items, newest first, a page at a time",
)
async def list_items(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(require("read"))],
    type: _Type = None,  # noqa: A002
    model: _Text = None,
    provider: _Text = None,
    session_id: _Text = None,
    trace_id: _Text = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # base64 of JSON: an id of 256 escaped characters makes up to about 2,100 characters
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> JSONBody:
    """
    Return a page of the project's items matching the filters, and the next cursor.

    An unknown or repeated query parameter is a 422 (a misspelt filter is not ignored).
    """
    check_query(request)
    where = FeedbackFilter(
        feedback_type=type,  # type: ignore[arg-type]
        model=model,
        provider=provider,
        session_id=session_id,
        trace_id=trace_id,
        owner_id=principal.project,
        since=since,
        until=until,
    )
    before = None if cursor is None else decode_cursor(cursor)
    store = service(request).store
    items = await store.query(where, limit=limit + 1, before=before)  # type: ignore[attr-defined]
    page = items[:limit]
    next_cursor = encode_cursor(page[-1]) if len(items) > limit else None
    return JSONBody({"items": [item_out(i) for i in page], "next_cursor": next_cursor})


@router.get("/stats", response_model=StatsOut, responses=_READ_ERRORS, summary="Statistics")
async def stats(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(require("read"))],
    model: _Text = None,
    provider: _Text = None,
    type: _Type = None,  # noqa: A002 - the API's name for the feedback type
    window_hours: Annotated[float, Query(gt=0, le=MAX_WINDOW_HOURS, allow_inf_nan=False)] = 24.0,
) -> JSONBody:
    """
    Return what get_feedback_stats returns, over the project's items in the window.

    With ``type``, only items of that type count (ratings figures are empty for others).
    An unknown or repeated query parameter is a 422.
    """
    check_query(request)
    store = service(request).store
    figures = await store.stats(  # type: ignore[attr-defined]
        window_hours=window_hours,
        model=model,
        provider=provider,
        owner_id=principal.project,
        **({} if type is None else {"feedback_type": type}),
    )
    return JSONBody(figures.to_dict())


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenOut,
    responses=_ERRORS,
    summary="Mint a browser token for one trace",
    openapi_extra=body_schema(TokenIn),
)
async def mint_token(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Return a signed token that lets a browser submit feedback on one trace until it expires.
    """
    body = await read_json(request)
    if not isinstance(body, dict):
        raise FeedbackValidationError("body", "must be a JSON object", body)
    try:
        wanted = TokenIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise FeedbackValidationError(field, first["msg"]) from None
    settings = service(request).settings
    if wanted.expires_in > settings.token_max_seconds:
        msg = f"must be at most {settings.token_max_seconds:g} seconds (server.token_max_seconds)"
        raise FeedbackValidationError("expires_in", msg, wanted.expires_in)
    # The rules the token's submissions will meet, so that no token is minted unusable.
    check_id("trace_id", wanted.trace_id)
    check_optional_id("session_id", wanted.session_id)
    check_optional_id("feedback_key", wanted.feedback_key)
    claims = TokenClaims(
        project=principal.project,
        trace_id=wanted.trace_id,
        expires_at=time.time() + wanted.expires_in,
        token_id=new_token_id(),
        session_id=wanted.session_id,
        feedback_key=wanted.feedback_key,
        feedback_type=wanted.type,
    )
    token = mint(service(request).auth.token_secret, claims)
    body_out = {
        "token": token,
        "token_id": claims.token_id,
        "trace_id": claims.trace_id,
        "expires_at": datetime.fromtimestamp(claims.expires_at, UTC),
    }
    return JSONBody(body_out, status_code=201)


def add_submissions(target: APIRouter) -> None:
    """
    Add the two submission routes (one item, a batch) to ``target``.

    `router` has them as usual routes; `create_app` adds them to a router of
    `RequestRoute` for its own app, where no dependency can be added.
    """
    target.add_api_route(
        "/feedback",
        submit,
        methods=["POST"],
        status_code=202,
        response_model=AcceptedOut,
        responses=_ERRORS,
        summary="Submit one feedback item",
        openapi_extra=body_schema(FeedbackIn, description="One item; type selects the fields."),
    )
    target.add_api_route(
        "/feedback/batch",
        submit_batch,
        methods=["POST"],
        status_code=207,
        response_model=BatchOut,
        responses=_ERRORS,
        summary="Submit many items; one result each",
        openapi_extra=body_schema(BatchIn, description="Up to server.batch_max_items items."),
    )


add_submissions(router)
