"""
Langfuse scores, LangSmith feedback and MLflow assessments as `submit_payload` bodies.

The HTTP service's peer routes and ``ai-feedback import`` (Langfuse, LangSmith) share
these mappings, so an item recorded through an SDK and one imported from that tool's
export are the same.

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

`mlflow_assessment_payload` maps an MLflow assessment (``log_feedback``,
``log_expectation``): a feedback value that is a number makes a rating (``True`` is 1,
with ``metadata.scale`` ``"thumbs"``), a string a label, a list or object a label named
after the assessment with the value as its input; an expectation makes a correction
whose ``corrected`` is the expected value (its JSON when it is not a string; MLflow
sends no original, so ``original`` is empty). A feedback that carries an error instead
of a value records nothing and is refused. The trace id goes to the context with
``span_id``; ``rationale`` to ``context.comment``; the assessment's name to
``metadata.name``, its source and metadata to ``metadata.mlflow_source`` and
``metadata.mlflow_metadata``; ``create_time`` to ``created_at``. `content_id` gives a
payload that came without an id (MLflow sends none) one derived from its content, so a
resent assessment is stored once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ai_feedback.exceptions import FeedbackValidationError

__all__ = [
    "content_id",
    "langfuse_score_payload",
    "langsmith_feedback_payload",
    "mlflow_assessment_payload",
]

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


_CONTENT_IDS = uuid.UUID("6f3c0c1e-55b1-4c8e-9a8f-2f9a3f1d7b21")


def content_id(payload: Mapping[str, Any]) -> str:
    """
    Return an id derived from ``payload`` (a UUID, version 5): equal payloads, equal ids.

    Raises:
        FeedbackValidationError: The payload cannot be encoded as JSON.
    """
    try:
        encoded = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise FeedbackValidationError("payload", "must hold only JSON values", payload) from exc
    return str(uuid.uuid5(_CONTENT_IDS, encoded.decode()))


def mlflow_assessment_payload(assessment: object, *, trace_id: str) -> dict[str, Any]:
    """
    Return the `submit_payload` body for one MLflow assessment of trace ``trace_id``.

    Raises:
        FeedbackValidationError: The assessment is not an object, names another trace,
            or holds neither a feedback value nor an expectation.
    """
    if not isinstance(assessment, Mapping):
        raise FeedbackValidationError("assessment", "must be a JSON object", assessment)
    named = assessment.get("trace_id")
    if named is not None and named != trace_id:
        msg = f"must be the trace of the path ({trace_id!r}) when given"
        raise FeedbackValidationError("assessment.trace_id", msg, named)
    context: dict[str, Any] = {"trace_id": trace_id}
    if assessment.get("span_id"):
        context["span_id"] = assessment["span_id"]
    if assessment.get("rationale"):
        context["comment"] = assessment["rationale"]
    metadata: dict[str, Any] = {"source": "mlflow"}
    for ours, theirs in (
        ("name", "assessment_name"),
        ("mlflow_source", "source"),
        ("mlflow_metadata", "metadata"),
        ("mlflow_run_id", "run_id"),
    ):
        if assessment.get(theirs):
            metadata[ours] = assessment[theirs]
    payload: dict[str, Any] = {"context": context, "metadata": metadata}
    if assessment.get("assessment_id"):
        payload["id"] = assessment["assessment_id"]
    if assessment.get("create_time"):
        payload["created_at"] = assessment["create_time"]
    kind = _mlflow_kind(assessment, metadata.get("name"))
    feedback = assessment.get("feedback")
    if isinstance(feedback, Mapping) and isinstance(feedback.get("value"), bool):
        metadata["scale"] = "thumbs"  # True is good and False bad, whatever the thresholds
    return payload | kind


def _mlflow_kind(assessment: Mapping[str, Any], name: object) -> dict[str, Any]:
    """
    The type and value fields of an assessment, by the rules in the module.
    """
    feedback, expectation = assessment.get("feedback"), assessment.get("expectation")
    if feedback is not None:
        if not isinstance(feedback, Mapping):
            raise FeedbackValidationError("assessment.feedback", "must be an object", feedback)
        value = feedback.get("value")
        if isinstance(value, bool):
            return {"type": "rating", "score": int(value)}
        if isinstance(value, int | float):
            return {"type": "rating", "score": value}
        if isinstance(value, str):
            return {"type": "label", "label": value, "input": None}
        if value is not None:
            return {"type": "label", "label": str(name or "feedback"), "input": value}
        msg = "is required: a feedback that carries an error instead of a value records nothing"
        raise FeedbackValidationError("assessment.feedback.value", msg, feedback.get("error"))
    if expectation is not None:
        if not isinstance(expectation, Mapping):
            msg = "must be an object"
            raise FeedbackValidationError("assessment.expectation", msg, expectation)
        return {"type": "correction", "original": "", "corrected": _expected(expectation)}
    raise FeedbackValidationError("assessment", "must hold a feedback or an expectation")


def _expected(expectation: Mapping[str, Any]) -> str:
    value = expectation.get("value")
    if isinstance(value, str):
        return value
    if value is not None:
        return orjson.dumps(value).decode()
    serialized = expectation.get("serialized_value")
    if isinstance(serialized, Mapping) and isinstance(serialized.get("value"), str):
        return str(serialized["value"])
    msg = "must hold a value or a serialized_value"
    raise FeedbackValidationError("assessment.expectation", msg, dict(expectation))
