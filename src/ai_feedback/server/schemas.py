"""
The JSON bodies of the HTTP service, as pydantic models for the OpenAPI document.

Request bodies are read and validated by the collector itself (`submit_payload`, with
every rule of the library and its error messages); these models describe them for
clients and tools. Response models are what the routes return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "AcceptedOut",
    "BatchIn",
    "BatchOut",
    "ErrorOut",
    "FeedbackIn",
    "ItemOut",
    "PageOut",
    "ReadyOut",
    "ReceiptOut",
    "RemovedOut",
    "StatsOut",
    "TokenIn",
    "TokenOut",
    "body_schema",
    "component_schemas",
    "errors",
]

_Id = Field(default=None, min_length=1, max_length=256)
_COMPONENTS: dict[str, Any] = {}


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Your id for the item: a retry with the same id stores it once.",
    )
    created_at: datetime | None = Field(
        default=None, description="When the feedback was given (ISO 8601 with an offset)."
    )
    context: dict[str, Any] | None = Field(
        default=None,
        description="What the feedback is about: trace_id, session_id, model, provider... "
        "owner_id is set from your key's project.",
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Where it came from.")
    processor: str | None = Field(default=None, min_length=1, max_length=256)


class RatingIn(_Common):
    """A numeric rating (the default type)."""

    type: Literal["rating"] = "rating"
    score: float = Field(ge=-1e15, le=1e15)
    trace_id: str | None = _Id
    comment: str | None = None


class TextIn(_Common):
    """Free-text feedback."""

    type: Literal["text"]
    text: str = Field(min_length=1)


class CorrectionIn(_Common):
    """A correction of a model output."""

    type: Literal["correction"]
    original: str
    corrected: str


class LabelIn(_Common):
    """A ground-truth label for an input."""

    type: Literal["label"]
    label: str = Field(min_length=1)
    input: Any = None


FeedbackIn = RatingIn | TextIn | CorrectionIn | LabelIn
"""One feedback item as submitted."""


class BatchIn(BaseModel):
    """Several items in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackIn] = Field(min_length=1)


class ErrorOut(BaseModel):
    """Every error's body."""

    error: str = Field(description="A short kind: invalid, unauthorized, conflict, ...")
    message: str
    field: str | None = None
    rule: str | None = None
    ids: list[str] | None = None
    retry_after: float | None = None
    step: str | None = None
    reason: str | None = None
    error_code: str | None = Field(None, description="MLflow's error code, on its routes")


class AcceptedOut(BaseModel):
    """The id of an accepted item (stored, or on disk in the spool)."""

    id: str


class BatchResult(BaseModel):
    """The outcome of one item of a batch."""

    index: int
    status: Literal["accepted", "rejected"]
    id: str | None = None
    error: ErrorOut | None = None


class BatchOut(BaseModel):
    """One result per item, in order."""

    accepted: int
    rejected: int
    results: list[BatchResult]


class ItemOut(BaseModel):
    """A stored item."""

    id: str
    type: Literal["rating", "text", "correction", "label"]
    value: Any
    context: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime


class RemovedOut(BaseModel):
    """How many were removed, per place."""

    items: int
    raw_payloads: int
    captures: int
    cache_entries: int
    dead_letters: int
    rollup_rows: int = Field(description="Rows of the statistics rollup the items left")


class ReceiptOut(BaseModel):
    """The record of a deletion: what was matched, what was removed, and when."""

    criteria: dict[str, Any]
    removed: RemovedOut
    deleted_at: datetime


class PageOut(BaseModel):
    """A page of items, newest first; pass next_cursor to get the next page."""

    items: list[ItemOut]
    next_cursor: str | None


class RatingStatsOut(BaseModel):
    """Rating figures of a window."""

    count: int
    min: float | None
    max: float | None
    percentiles: dict[str, float]
    distribution: dict[str, int] | None


class ModelStatsOut(BaseModel):
    """Figures of one model."""

    count: int
    average_rating: float | None


class StatsOut(BaseModel):
    """Statistics of a window, as get_feedback_stats returns them."""

    total_count: int
    average_rating: float | None
    by_type: dict[str, int]
    window_hours: float
    model: str | None
    provider: str | None
    rating: RatingStatsOut
    by_model: dict[str, ModelStatsOut]


class TokenIn(BaseModel):
    """What a browser token is for."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(min_length=1, max_length=256)
    session_id: str | None = _Id
    feedback_key: str | None = _Id
    type: Literal["rating", "text", "correction", "label"] | None = None
    expires_in: float = Field(default=3600.0, gt=0, strict=True, description="Seconds.")


class TokenOut(BaseModel):
    """A browser token: send it as Authorization: Bearer <token>."""

    token: str
    token_id: str
    trace_id: str
    expires_at: datetime


class IngestionOut(BaseModel):
    """Langfuse's multi-status answer for an ingestion batch."""

    successes: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class ScoresOut(BaseModel):
    """Langfuse's answer for an array of scores (202: all accepted; 207: some not)."""

    message: str | None = None
    accepted: int | None = None
    rejected: int | None = None
    errors: list[dict[str, Any]] | None = None


class ProjectsOut(BaseModel):
    """Langfuse's projects listing: the key's project."""

    data: list[dict[str, Any]]


class LangSmithInfoOut(BaseModel):
    """What LangSmith clients read from GET /info."""

    version: str
    instance_flags: dict[str, Any]
    batch_ingest_config: dict[str, Any]


class PresignedOut(BaseModel):
    """A LangSmith presigned feedback token."""

    id: str
    url: str
    expires_at: datetime


class AssessmentOut(BaseModel):
    """The MLflow assessment as recorded, with its ``assessment_id``."""

    assessment: dict[str, Any]


class ReadyOut(BaseModel):
    """Whether the service can store and read, and what waits in its spool."""

    status: Literal["ready", "unavailable"]
    store: str
    writer: dict[str, Any]


_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or an empty body",
    401: "No valid API key or token",
    403: "The key lacks the scope, or the token does not allow this",
    404: "Not found (or another project's)",
    408: "The body did not arrive in time",
    409: "A different item is already stored under that id",
    413: "The body or a field is too large",
    415: "The body is not JSON",
    422: "Invalid input: field and rule name what broke",
    429: "The spool is full: retry after Retry-After seconds",
    503: "The store or the spool is unavailable, or the service has not started",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """
    Return the ``responses`` entries documenting ``statuses`` with the error body.
    """
    return {
        status: {"model": ErrorOut, "description": _ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


def body_schema(model: Any, *, description: str = "") -> dict[str, Any]:  # noqa: ANN401
    """
    Return ``openapi_extra`` declaring ``model`` as the JSON request body.

    The model's schema and the ones it uses are registered as components
    (`component_schemas`).
    """
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    _COMPONENTS.update(schema.pop("$defs", {}))
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def component_schemas() -> dict[str, Any]:
    """
    Return the schemas that request bodies refer to.
    """
    return dict(_COMPONENTS)
