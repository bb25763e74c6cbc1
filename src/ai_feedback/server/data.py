"""
Data out under ``/v1``: streamed exports and deletion with receipts.

``GET /v1/export`` (scope ``read``) streams the caller's project as training data,
labels or raw items; ``DELETE /v1/feedback`` (scope ``admin``) deletes the project's
items by id, trace or session and answers the receipt. Neither can reach another
project: the project's ``owner_id`` is always part of the filter.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ai_feedback._models import FeedbackFilter
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.export import ExportOptions, export_chunks
from ai_feedback.export._sinks import encoder
from ai_feedback.server.auth import Principal, require
from ai_feedback.server.errors import ApiError, JSONBody
from ai_feedback.server.schemas import ReceiptOut, errors
from ai_feedback.server.service import Moment, check_query, service

__all__ = ["delete_one", "router"]

router = APIRouter(prefix="/v1", tags=["data"])

_Text = Annotated[str | None, Query(min_length=1, max_length=256)]
_SUFFIX = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}
_MEDIA = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}


@router.get(
    "/export",
    responses={
        200: {
            "description": "The export file, streamed",
            "content": {media: {"schema": {"type": "string"}} for media in _MEDIA.values()},
        },
        **errors(401, 403, 422, 503),
    },
    response_class=StreamingResponse,
    summary="Export the project's feedback (training data, labels, raw items)",
)
async def export_route(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(require("read"))],
    kind: Annotated[Literal["sft", "dpo", "kto", "labels", "raw"], Query()],
    format: Annotated[Literal["jsonl", "csv", "parquet"], Query()] = "jsonl",  # noqa: A002
    flavor: Annotated[Literal["openai", "trl"] | None, Query()] = None,
    style: Annotated[Literal["conversational", "standard"], Query()] = "conversational",
    min_rating: Annotated[float, Query(allow_inf_nan=False)] = 4,
    max_rating: Annotated[float, Query(allow_inf_nan=False)] = 2,
    session_id: _Text = None,
    model: _Text = None,
    since: Moment = None,
    until: Moment = None,
) -> StreamingResponse:
    """
    Stream the project's items as ``kind`` rows, in constant memory.

    Options are checked before the first byte, so a bad one (unknown or repeated too)
    is a 422; the rows follow the project's items newest first.
    """
    check_query(request, "option of this export")
    where = FeedbackFilter(
        owner_id=principal.project, session_id=session_id, model=model, since=since, until=until
    )
    options = ExportOptions(kind, flavor, style, min_rating, max_rating, where)
    try:
        encoder(options, format)  # refuses csv for anything but labels, before streaming
    except FeedbackValidationError as exc:
        raise exc.renamed("format") if exc.field == "file_format" else exc from None
    chunks = export_chunks(service(request).store, options, format)
    filename = f"feedback-{kind}.{_SUFFIX[format]}"
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[format],
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.delete(
    "/feedback",
    response_model=ReceiptOut,
    responses=errors(401, 403, 422, 503),
    summary="Delete the project's feedback by id, trace, session or owner",
)
async def delete_route(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(require("admin"))],
    id: _Text = None,  # noqa: A002 - the item's field name
    trace_id: _Text = None,
    session_id: _Text = None,
    owner_id: _Text = None,
) -> JSONBody:
    """
    Delete the project's items matching every given field; answer the receipt.

    At least one filter is required; ``owner_id`` is the project itself (every item a key
    writes belongs to its project), so ``owner_id`` alone deletes all of the project's
    feedback. An unknown query parameter is refused, so that a misspelt filter never
    widens a deletion. Afterwards no read, statistic or export returns the items.
    """
    check_query(request, "filter of this deletion")
    if id is None and trace_id is None and session_id is None and owner_id is None:
        raise FeedbackValidationError("id", "or trace_id, session_id or owner_id is required")
    if owner_id is not None and owner_id != principal.project:
        msg = f"A key deletes its own project's feedback only (owner_id {principal.project!r})."
        raise ApiError(403, "forbidden", msg)
    try:
        where = FeedbackFilter(
            item_id=id, trace_id=trace_id, session_id=session_id, owner_id=principal.project
        )
    except FeedbackValidationError as exc:
        raise exc.renamed("id") if exc.field == "item_id" else exc from None
    receipt = await service(request).collector.delete(where)
    return JSONBody(receipt.to_dict())


async def delete_one(request: Request, principal: Principal, item_id: str, field: str) -> JSONBody:
    """
    Delete the project's item ``item_id`` (the peers' delete calls); answer the receipt.

    ``field`` is the peer's name for the id, named by the error when the id is invalid.
    An id that matches nothing answers a receipt of zeros: the deletion is logged, so the
    item is not stored later either (see the deletion log).
    """
    check_query(request, "parameter of this deletion")
    try:
        where = FeedbackFilter(item_id=item_id, owner_id=principal.project)
    except FeedbackValidationError as exc:
        raise exc.renamed(field) from None
    receipt = await service(request).collector.delete(where)
    return JSONBody(receipt.to_dict())
