"""
MLflow's assessment route, so that an unmodified MLflow client can log feedback here.

Point the client at the service (``MLFLOW_TRACKING_URI=http://host:8000``) with a key's
secret as its token (``MLFLOW_TRACKING_TOKEN``, sent as ``Authorization: Bearer``; or
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as the key id and secret). Then
``mlflow.log_feedback`` and ``mlflow.log_expectation`` on a trace id post here:

- ``POST /api/3.0/mlflow/traces/{trace_id}/assessments``: records the assessment
  (mapped by `ai_feedback.peers.mlflow_assessment_payload`) and answers it with its
  ``assessment_id``. An assessment carries no id, so the item's id is derived from its
  content and its ``create_time`` (`ai_feedback.peers.content_id`): the client's
  retries store it once.

Errors name MLflow's fields (``assessment.feedback.value``, not the item's ``score``)
and also carry MLflow's ``error_code``, which the client shows; other MLflow endpoints
answer ``ENDPOINT_NOT_FOUND``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.peers import mlflow_assessment_payload, mlflow_error, with_content_id
from ai_feedback.server.auth import Principal, require
from ai_feedback.server.body import read_json
from ai_feedback.server.errors import JSONBody
from ai_feedback.server.schemas import AssessmentOut, body_schema, errors
from ai_feedback.server.service import bind_owner, service

__all__ = ["router"]

router = APIRouter(prefix="/api/3.0/mlflow", tags=["mlflow"])


@router.post(
    "/traces/{trace_id}/assessments",
    response_model=AssessmentOut,
    responses=errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 503),
    summary="MLflow create assessment (log_feedback, log_expectation)",
    openapi_extra=body_schema(dict[str, Any], description="{assessment: {...}}"),
)
async def create_assessment(
    request: Request,
    trace_id: str,
    principal: Annotated[Principal, Depends(require("ingest"))],
) -> JSONBody:
    """
    Record one MLflow assessment of ``trace_id``; answer it with its ``assessment_id``.
    """
    body = await read_json(request)
    assessment = body.get("assessment") if isinstance(body, Mapping) else None
    payload = bind_owner(mlflow_assessment_payload(assessment, trace_id=trace_id), principal)
    with_content_id(payload)  # its owner is part of the content
    try:
        item_id = await service(request).collector.submit_payload(payload)
    except FeedbackValidationError as exc:
        raise mlflow_error(exc, assessment) from None
    recorded = {**(assessment or {}), "trace_id": trace_id, "assessment_id": item_id}
    return JSONBody({"assessment": recorded})
