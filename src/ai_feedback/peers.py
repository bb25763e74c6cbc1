"""
Langfuse scores and LangSmith feedback as `FeedbackCollector.submit_payload` bodies.

The HTTP service's peer routes and ``ai-feedback import`` share these mappings, so an
item recorded through an SDK and one imported from that tool's export are the same.

`langfuse_score_payload` maps one score: NUMERIC -> rating, BOOLEAN -> rating (0 or 1,
with ``metadata.scale`` ``"thumbs"``), CATEGORICAL -> label, TEXT -> text, CORRECTION ->
correction (Langfuse sends only the corrected text, so ``original`` is empty). The
score's id becomes the item's id (a resent score is stored once); ``traceId``,
``sessionId``, ``observationId`` go to the context; ``name``, ``environment``,
``configId`` and the score's own metadata to the metadata; ``comment`` to
``context.comment``; ``timestamp`` to ``created_at``.

`langsmith_feedback_payload` maps a LangSmith feedback: a ``score`` makes a rating
(``True`` is 1, with ``metadata.scale`` ``"thumbs"``), else a ``correction`` a correction
(its ``output`` when it is an object with one, or its JSON), else a ``value`` a label (a
number value: a rating), else a ``comment`` a text. ``key`` goes to ``metadata.key``,
``comment`` to ``context.comment``, ``session_id`` to the context, LangSmith's own
``trace_id`` and ``feedback_source`` to the metadata; the feedback's id becomes the
item's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ai_feedback.exceptions import FeedbackValidationError

__all__ = ["langfuse_score_payload", "langsmith_feedback_payload"]

_DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION")
_CONTEXT_KEYS = (
    ("trace_id", "traceId"),
    ("session_id", "sessionId"),
    ("observation_id", "observationId"),
)
_METADATA_KEYS = (
    ("name", "name"),
    ("environment", "environment"),
    ("config_id", "configId"),
    ("langfuse_metadata", "metadata"),
)


def langfuse_score_payload(score: object, *, timestamp: object = None) -> dict[str, Any]:
    """
    Return the `submit_payload` body for one Langfuse score.

    Raises:
        FeedbackValidationError: The score is not an object, or its data type or value
            cannot be mapped.
    """
    if not isinstance(score, Mapping):
        raise FeedbackValidationError("score", "must be a JSON object", score)
    context = {ours: score[theirs] for ours, theirs in _CONTEXT_KEYS if score.get(theirs)}
    if score.get("comment"):
        context["comment"] = score["comment"]
    metadata: dict[str, Any] = {"source": "langfuse"}
    metadata |= {ours: score[theirs] for ours, theirs in _METADATA_KEYS if score.get(theirs)}
    payload: dict[str, Any] = {"context": context, "metadata": metadata}
    if score.get("id") is not None:
        payload["id"] = score["id"]
    when = score.get("timestamp") or timestamp
    if when is not None:
        payload["created_at"] = when
    if score.get("dataType") == "BOOLEAN":
        metadata["scale"] = "thumbs"  # 1 is good and 0 bad, whatever the rating thresholds
    return payload | _langfuse_kind(score.get("dataType"), score.get("value"))


def _langfuse_kind(data_type: object, value: object) -> dict[str, Any]:
    """
    The type and value fields of a score, by its data type.
    """
    if data_type is None:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        data_type = "NUMERIC" if numeric else "CATEGORICAL"
    if data_type in ("NUMERIC", "BOOLEAN"):
        return {"type": "rating", "score": int(value) if isinstance(value, bool) else value}
    if data_type == "CATEGORICAL":
        return {"type": "label", "label": _text("value", value), "input": None}
    if data_type == "TEXT":
        return {"type": "text", "text": value}
    if data_type == "CORRECTION":
        return {"type": "correction", "original": "", "corrected": value}
    msg = f"must be one of {', '.join(_DATA_TYPES)}"
    raise FeedbackValidationError("dataType", msg, data_type)


def _text(field: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise FeedbackValidationError(field, "must be a string or a number", value)


def langsmith_feedback_payload(body: object) -> dict[str, Any]:
    """
    Return the `submit_payload` body for one LangSmith feedback.

    Raises:
        FeedbackValidationError: The body is not an object, or carries nothing to record.
    """
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("feedback", "must be a JSON object", body)
    context = {
        ours: str(body[theirs])
        for ours, theirs in (("trace_id", "run_id"), ("session_id", "session_id"))
        if body.get(theirs) is not None
    }
    metadata: dict[str, Any] = {"source": "langsmith"}
    if body.get("key") is not None:
        metadata["key"] = body["key"]
    for field in ("trace_id", "feedback_source", "feedback_config", "metadata"):
        if body.get(field) is not None:
            metadata[f"langsmith_{field}"] = body[field]
    payload: dict[str, Any] = {"context": context, "metadata": metadata}
    payload |= {field: str(body[field]) for field in ("id", "created_at") if body.get(field)}
    kind = _langsmith_kind(body, metadata.get("key"))
    if isinstance(body.get("score", body.get("value")), bool):
        metadata["scale"] = "thumbs"  # True is good and False bad, whatever the thresholds
    if kind.get("type") != "text" and body.get("comment"):
        context["comment"] = body["comment"]
    return payload | kind


def _langsmith_kind(body: Mapping[str, Any], key: object) -> dict[str, Any]:
    """
    The type and value fields of a LangSmith feedback, by the rules in the module.
    """
    score, value, correction = body.get("score"), body.get("value"), body.get("correction")
    if score is not None:
        return {"type": "rating", "score": int(score) if isinstance(score, bool) else score}
    if correction is not None:
        return {"type": "correction", "original": "", "corrected": _corrected(correction)}
    if isinstance(value, bool | int | float):
        return {"type": "rating", "score": int(value) if isinstance(value, bool) else value}
    if isinstance(value, str):
        return {"type": "label", "label": value, "input": None}
    if value is not None:
        return {"type": "label", "label": str(key or "value"), "input": value}
    if body.get("comment"):
        return {"type": "text", "text": body["comment"]}
    msg = "one of score, value, correction or comment is required"
    raise FeedbackValidationError("score", msg)


def _corrected(correction: object) -> str:
    if isinstance(correction, str):
        return correction
    if isinstance(correction, Mapping) and isinstance(correction.get("output"), str):
        return str(correction["output"])
    return orjson.dumps(correction).decode()
