"""
Langfuse's score ingestion, so that an unmodified Langfuse SDK can send scores here.

Point the SDK at the service (``host=``), with a key's id as the public key and its
secret as the secret key (HTTP Basic). Routes:

- ``POST /api/public/ingestion`` (SDK v2/v3): a batch of events; ``score-create`` events
  are recorded, other events are reported in ``errors`` (ai-feedback keeps scores only).
  207 with ``successes`` and ``errors``.
- ``POST /api/public/scores`` (SDK v5): an array of scores; 202 when all are accepted,
  else 207 with ``accepted``, ``rejected`` and ``errors``.
- ``GET /api/public/projects``: the key's project (the SDK's ``auth_check``).
- ``POST /api/public/otel/v1/traces`` (SDK v3 and later export their spans with
  OpenTelemetry): authenticated, then discarded with 200 (ai-feedback keeps feedback,
  not traces), so that the SDK logs no export errors.

Scores are mapped by `ai_feedback.peers.langfuse_score_payload`; errors name Langfuse's
fields (``value``, ``traceId``, ...; `ai_feedback.peers.langfuse_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from ai_feedback.asgi import _error_body
from ai_feedback.exceptions import FeedbackError, FeedbackValidationError
from ai_feedback.peers import langfuse_error, langfuse_score_payload
from ai_feedback.server.auth import Principal, require
from ai_feedback.server.body import read_json
from ai_feedback.server.data import delete_one
from ai_feedback.server.errors import JSONBody
from ai_feedback.server.schemas import (
    IngestionOut,
    ProjectsOut,
    ReceiptOut,
    ScoresOut,
    body_schema,
    errors,
)
from ai_feedback.server.service import bind_owner, service

__all__ = ["router"]

router = APIRouter(prefix="/api/public", tags=["langfuse"])


async def _record(
    request: Request, principal: Principal, payloads: list[Any]
) -> list[str | Exception]:
    """
    Record mapped payloads (or the errors that mapping raised), one result each.

    A score sent again under its id updates it, as in Langfuse (an upsert within the
    key's project: another project's id is a conflict). The errors of recording name
    Langfuse's fields.
    """
    bound: list[dict[str, Any] | Exception] = []
    for payload in payloads:
        if isinstance(payload, Exception):
            bound.append(payload)
            continue
        try:
            bound.append(bind_owner(payload, principal))
        except FeedbackValidationError as exc:
            bound.append(exc)
    valid = [p for p in bound if isinstance(p, dict)]
    outcomes = iter(
        langfuse_error(o) if isinstance(o, FeedbackValidationError) else o
        for o in await service(request).collector.submit_payloads(valid, replace=True)
    )
    return [entry if isinstance(entry, Exception) else next(outcomes) for entry in bound]


def _mapped(score: object, **extra: Any) -> dict[str, Any] | Exception:  # noqa: ANN401
    try:
        return langfuse_score_payload(score, **extra)
    except FeedbackValidationError as exc:
        return exc


@router.post(
    "/ingestion",
    status_code=207,
    response_model=IngestionOut,
    responses=errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
    summary="Langfuse ingestion (score-create events)",
    openapi_extra=body_schema(dict[str, Any], description="{batch: [events], metadata}"),
)
async def ingestion(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Record the batch's score-create events; 207 with successes and errors per event.
    """
    body = await read_json(request)
    events = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise FeedbackValidationError("batch", "must be a list of events")
    limit = service(request).settings.batch_max_items
    if len(events) > limit:
        raise FeedbackValidationError("batch", f"must hold at most {limit} events", len(events))
    payloads: list[Any] = []
    for event in events:
        if not isinstance(event, Mapping):
            payloads.append(FeedbackValidationError("batch", "must hold event objects", event))
        elif event.get("type") != "score-create":
            kind = event.get("type")
            payloads.append(
                FeedbackValidationError("type", "only score-create events are kept", kind)
            )
        else:
            payloads.append(_mapped(event.get("body"), timestamp=event.get("timestamp")))
    successes, failed = [], []
    for event, outcome in zip(events, await _record(request, principal, payloads), strict=True):
        event_id = event.get("id") if isinstance(event, Mapping) else None
        if isinstance(outcome, str):
            successes.append({"id": event_id, "status": 201})
        else:  # a refused score is a 400; a conflict or the store being down says so
            status, error = (
                _error_body(outcome) if isinstance(outcome, FeedbackError) else (400, {})
            )
            status = 400 if status in (413, 422) else status
            kind = error.get("error", "invalid")
            failed.append(
                {"id": event_id, "status": status, "message": str(outcome), "error": kind}
            )
    return JSONBody({"successes": successes, "errors": failed}, status_code=207)


@router.post(
    "/scores",
    status_code=202,
    response_model=ScoresOut,
    responses={
        207: {"model": ScoresOut, "description": "Some scores were rejected"},
        **errors(400, 401, 403, 408, 413, 415, 422, 429, 503),
    },
    summary="Langfuse scores (SDK v5)",
    openapi_extra=body_schema(list[dict[str, Any]], description="An array of scores"),
)
async def scores(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> JSONBody:
    """
    Record an array of scores; 202 when all are accepted, else 207 with the errors.
    """
    body = await read_json(request)
    items = body if isinstance(body, list) else [body]
    limit = service(request).settings.batch_max_items
    if len(items) > limit:
        raise FeedbackValidationError("scores", f"must hold at most {limit} scores", len(items))
    outcomes = await _record(request, principal, [_mapped(score) for score in items])
    rejected = [{"message": str(o)} for o in outcomes if not isinstance(o, str)]
    if not rejected:
        return JSONBody({"message": "Accepted"}, status_code=202)
    accepted = len(items) - len(rejected)
    body_out = {"accepted": accepted, "rejected": len(rejected), "errors": rejected}
    return JSONBody(body_out, status_code=207)


@router.delete(
    "/scores/{score_id}",
    response_model=ReceiptOut,
    responses=errors(401, 403, 422, 503),
    summary="Langfuse api.scores.delete",
)
async def delete_score(
    request: Request,
    score_id: str,
    principal: Annotated[Principal, Depends(require("admin"))],
) -> JSONBody:
    """
    Delete one score of the key's project (scope ``admin``); answer the receipt.
    """
    return await delete_one(request, principal, score_id, "score_id")


@router.get(
    "/projects",
    response_model=ProjectsOut,
    responses=errors(401, 403),
    summary="The key's project (Langfuse auth_check)",
)
async def projects(principal: Annotated[Principal, Depends(require(None))]) -> JSONBody:
    """
    Return the key's project in Langfuse's shape.
    """
    project = {
        "id": principal.project,
        "name": principal.project,
        "metadata": {},
        "organization": {"id": principal.project, "name": principal.project},
    }
    return JSONBody({"data": [project]})


@router.post(
    "/otel/v1/traces",
    response_class=Response,
    responses={
        200: {
            "description": "Spans accepted and discarded (an empty export response)",
            "content": {"application/x-protobuf": {}, "application/json": {}},
        },
        **errors(401, 403),
    },
    summary="Langfuse span export (OpenTelemetry), discarded",
)
async def spans(
    request: Request, principal: Annotated[Principal, Depends(require("ingest"))]
) -> Response:
    """
    Answer an OTLP span export with an empty success; the spans are not kept.
    """
    del principal  # authenticated by the dependency; nothing is recorded for it
    if "json" in request.headers.get("content-type", ""):
        return Response(b"{}", media_type="application/json")
    return Response(b"", media_type="application/x-protobuf")
