"""
Langfuse scores, LangSmith feedback and MLflow assessments as `submit_payload` bodies.

The HTTP service's peer routes and ``ai-feedback import`` (Langfuse, LangSmith) share
these mappings, so an item recorded through an SDK and one imported from that tool's
export are the same.

`langfuse_score_payload` maps one score: NUMERIC -> rating, BOOLEAN -> rating (0 or 1,
or true or false, and nothing else; with ``metadata.scale`` ``"thumbs"``), CATEGORICAL ->
label, TEXT -> text, CORRECTION -> correction (Langfuse sends only the corrected text,
so ``original`` is empty). The score's id becomes the item's id (a resent score is
stored once); ``traceId``, ``sessionId``, ``observationId`` go to the context; ``name``,
``environment``, ``configId``, ``datasetRunId``, ``queueId``, ``source`` (as
``langfuse_source``) and the score's own metadata to the metadata; ``comment`` to
``context.comment``; ``timestamp`` to ``created_at``.

`langsmith_feedback_payload` maps a LangSmith feedback: a ``score`` makes a rating
(``True`` is 1, with ``metadata.scale`` ``"thumbs"``), else a ``correction`` a correction
(its ``output`` when it is an object with one, or its JSON), else a ``value`` a label (a
number value: a rating), else a ``comment`` a text. ``key`` goes to ``metadata.key``,
``comment`` to ``context.comment``, ``session_id`` to the context; LangSmith's own
``trace_id``, ``feedback_source``, ``feedback_config``, ``extra`` (the feedback's
metadata), ``error``, ``feedback_group_id`` and ``comparative_experiment_id`` to the
metadata as ``langsmith_<field>``, and so are the ``score``, ``value`` or
``correction`` the item's type was not made from (a score with a correction is a
rating with ``metadata.langsmith_correction``); the feedback's id becomes the item's id.
Its ids, ``created_at``, ``key`` and ``comment`` must be strings when given.

`langfuse_error`, `langsmith_error` and `mlflow_error` rename the fields of an error
raised for a mapped payload (the item's ``score``, ``context.trace_id``, ...) to the
peer's (``value``, ``run_id``, ...), so that callers read the names they sent.

`mlflow_assessment_payload` maps an MLflow assessment (``log_feedback``,
``log_expectation``): a feedback value that is a number makes a rating (``True`` is 1,
with ``metadata.scale`` ``"thumbs"``), a string a label, a list or object a label named
after the assessment with the value as its input; an expectation makes a correction
whose ``corrected`` is the expected value (its JSON when it is not a string; MLflow
sends no original, so ``original`` is empty). A feedback that carries an error instead
of a value records nothing and is refused (an error beside a value is kept in
``metadata.mlflow_error``); an assessment holds a feedback or an expectation, not both.
The trace id goes to the context with ``span_id``; ``rationale`` to ``context.comment``;
the assessment's name to ``metadata.name``, its source and metadata to
``metadata.mlflow_source`` and ``metadata.mlflow_metadata``; ``create_time`` to
``created_at``. Other fields (``valid``, ``overrides``) are not kept. `content_id` gives
a payload that came without an id (MLflow sends none) one derived from its content, so a
resent assessment is stored once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

import orjson

from ai_feedback._models import FeedbackItem, FeedbackType
from ai_feedback.exceptions import FeedbackValidationError

__all__ = [
    "content_id",
    "langfuse_error",
    "langfuse_score_payload",
    "langsmith_error",
    "langsmith_feedback_out",
    "langsmith_feedback_payload",
    "mlflow_assessment_payload",
    "mlflow_error",
    "uuid_or_none",
    "with_content_id",
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
    ("dataset_run_id", "datasetRunId"),
    ("queue_id", "queueId"),
    ("langfuse_source", "source"),
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
    if data_type == "BOOLEAN":
        if isinstance(value, int | float) and value in (0, 1):  # True and False included
            return {"type": "rating", "score": int(value)}
        raise FeedbackValidationError("value", "must be 0 or 1 (or true or false)", value)
    if data_type == "NUMERIC":
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


_LANGFUSE_NAMES = (
    *((f"context.{ours}", theirs) for ours, theirs in _CONTEXT_KEYS),
    ("context.comment", "comment"),
    *((f"metadata.{ours}", theirs) for ours, theirs in _METADATA_KEYS),
    ("context", "score"),
    ("metadata", "score"),
    ("created_at", "timestamp"),
    *((ours, "value") for ours in ("score", "label", "input", "text", "corrected")),
)
_LANGSMITH_STRINGS = ("run_id", "session_id", "id", "created_at", "key", "comment")
_LANGSMITH_METADATA = (
    "trace_id",
    "feedback_source",
    "feedback_config",
    "metadata",
    "extra",
    "error",
    "feedback_group_id",
    "comparative_experiment_id",
)


def langfuse_error(exc: FeedbackValidationError) -> FeedbackValidationError:
    """
    Return ``exc`` (raised for a mapped score) naming the Langfuse field at fault.

    The score's value is ``value`` whatever the item's type; ``context`` or
    ``metadata`` as a whole (too large) is the ``score``.
    """
    return _renamed(exc, _LANGFUSE_NAMES)


def langsmith_feedback_payload(body: object) -> dict[str, Any]:
    """
    Return the `submit_payload` body for one LangSmith feedback.

    Raises:
        FeedbackValidationError: The body is not an object, has an id, key or comment
            that is not a string, or carries nothing to record.
    """
    if not isinstance(body, Mapping):
        raise FeedbackValidationError("feedback", "must be a JSON object", body)
    for field in _LANGSMITH_STRINGS:  # str() would turn 12345 or {"a": 1} into an id
        if body.get(field) is not None and not isinstance(body[field], str):
            raise FeedbackValidationError(field, "must be a string", body[field])
    context = {
        ours: body[theirs]
        for ours, theirs in (("trace_id", "run_id"), ("session_id", "session_id"))
        if body.get(theirs) is not None
    }
    metadata: dict[str, Any] = {"source": "langsmith"}
    if body.get("key") is not None:
        metadata["key"] = body["key"]
    for field in _LANGSMITH_METADATA:
        if body.get(field) is not None:
            metadata[f"langsmith_{field}"] = body[field]
    payload: dict[str, Any] = {"context": context, "metadata": metadata}
    payload |= {field: body[field] for field in ("id", "created_at") if body.get(field)}
    kind = _langsmith_kind(body, metadata.get("key"))
    # The feedback is one item of one type; what its type did not take is kept beside it.
    for field in _langsmith_unused(body, kind):
        metadata[f"langsmith_{field}"] = body[field]
    score = body.get("score")
    if isinstance(body.get("value") if score is None else score, bool):  # "score": null too
        metadata["scale"] = "thumbs"  # True is good and False bad, whatever the thresholds
    if kind.get("type") != "text" and body.get("comment"):
        context["comment"] = body["comment"]
    return payload | kind


def langsmith_feedback_out(item: FeedbackItem) -> dict[str, Any]:
    """
    Return ``item`` as a LangSmith ``Feedback`` (what ``read_feedback`` parses).

    Items recorded through LangSmith come back with their key, score or value,
    correction, comment and the fields kept in metadata; other items map by type (a
    rating is a score, a label a value, a text a comment, a correction its corrected
    text) under the key ``metadata.key`` or the type's name. Ids that are not UUIDs
    (run, session) are None, as LangSmith has none such.
    """
    context, metadata = item.context, item.metadata
    out: dict[str, Any] = {
        "id": item.id,
        "created_at": item.created_at.isoformat(),
        "modified_at": item.created_at.isoformat(),
        "run_id": uuid_or_none(context.get("trace_id")),
        "trace_id": uuid_or_none(metadata.get("langsmith_trace_id")),
        "session_id": uuid_or_none(context.get("session_id")),
        "key": metadata.get("key") if isinstance(metadata.get("key"), str) else None,
        "score": None,
        "value": None,
        "comment": context.get("comment") if isinstance(context.get("comment"), str) else None,
        "correction": None,
    }
    value = item.value
    if item.feedback_type is FeedbackType.RATING:
        out["score"] = value
    elif item.feedback_type is FeedbackType.LABEL:
        out["value"] = value["label"] if value.get("input") is None else value["input"]
    elif item.feedback_type is FeedbackType.CORRECTION:
        out["correction"] = value["corrected"]
    else:
        out["comment"] = value
    for field in ("score", "value", "correction"):  # what the item's type did not take
        if out[field] is None and f"langsmith_{field}" in metadata:
            out[field] = metadata[f"langsmith_{field}"]
    for field in ("extra", "feedback_group_id", "comparative_experiment_id"):
        if field in _LANGSMITH_UUIDS:
            out[field] = uuid_or_none(metadata.get(f"langsmith_{field}"))
        else:
            out[field] = metadata.get(f"langsmith_{field}")
    source = metadata.get("langsmith_feedback_source")
    out["feedback_source"] = (
        source if isinstance(source, dict) and isinstance(source.get("type"), str) else None
    )
    if out["key"] is None:
        out["key"] = item.feedback_type.value
    return out


_LANGSMITH_UUIDS = ("feedback_group_id", "comparative_experiment_id")


def uuid_or_none(value: object) -> str | None:
    """
    Return ``value`` as a UUID's canonical text, or None when it is not a UUID string.
    """
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


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


def _langsmith_unused(body: Mapping[str, Any], kind: Mapping[str, Any]) -> list[str]:
    """
    The fields among score, value and correction that ``kind`` was not made from.
    """
    given = [f for f in ("score", "value", "correction") if body.get(f) is not None]
    if kind["type"] == "rating":
        used = "score" if body.get("score") is not None else "value"
    elif kind["type"] == "correction":
        used = "correction"
    else:
        used = "value"
    return [field for field in given if field != used]


def _corrected(correction: object) -> str:
    if isinstance(correction, str):
        return correction
    if _has_output(correction):
        return str(correction["output"])
    return orjson.dumps(correction).decode()


def _has_output(correction: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(correction, Mapping) and isinstance(correction.get("output"), str)


def langsmith_error(exc: FeedbackValidationError, feedback: object) -> FeedbackValidationError:
    """
    Return ``exc`` (raised for the mapped ``feedback``) naming the LangSmith field at fault.

    ``context`` or ``metadata`` as a whole (too large) is the ``feedback``.
    """
    body = feedback if isinstance(feedback, Mapping) else {}
    correction = body.get("correction")
    names = (
        ("context.trace_id", "run_id"),
        ("trace_id", "run_id"),
        ("context.session_id", "session_id"),
        ("context.comment", "comment"),
        ("metadata.key", "key"),
        *(
            (f"metadata.langsmith_{field}", field)
            for field in (*_LANGSMITH_METADATA, "score", "value", "correction")
        ),
        ("context", "feedback"),
        ("metadata", "feedback"),
        ("score", "score" if body.get("score") is not None else "value"),
        ("corrected", "correction.output" if _has_output(correction) else "correction"),
        ("text", "comment"),
        *((ours, "value") for ours in ("label", "input")),
    )
    return _renamed(exc, names)


def _renamed(
    exc: FeedbackValidationError, names: Iterable[tuple[str, str]]
) -> FeedbackValidationError:
    """
    Return ``exc`` naming the peer's field instead of the item's.

    The first of ``names`` (ours, theirs) that is the field or holds it (``ours.key``,
    ``ours[0]``) is replaced; a field named by none is kept.
    """
    field = exc.field
    for ours, theirs in names:
        if field == ours or field.startswith((f"{ours}.", f"{ours}[")):
            return exc.renamed(theirs + field[len(ours) :])
    return exc


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


def with_content_id(payload: dict[str, Any]) -> dict[str, Any]:
    """
    Give ``payload`` the `content_id` of its content when it has no id but a time.

    Without a time, two equal payloads are two pieces of feedback, so each gets a new id.
    A payload JSON cannot encode keeps no id: its validation names the field at fault.
    """
    if "id" not in payload and "created_at" in payload:
        with contextlib.suppress(FeedbackValidationError):
            payload["id"] = content_id(payload)
    return payload


def mlflow_assessment_payload(assessment: object, *, trace_id: str) -> dict[str, Any]:
    """
    Return the `submit_payload` body for one MLflow assessment of trace ``trace_id``.

    Raises:
        FeedbackValidationError: The assessment is not an object, names another trace,
            has a field of the wrong type, holds both or neither of a feedback and an
            expectation, or a feedback without a value (an error only).
    """
    assessment = _checked_assessment(assessment, trace_id)
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
    ):
        if assessment.get(theirs):
            metadata[ours] = assessment[theirs]
    payload: dict[str, Any] = {"context": context, "metadata": metadata}
    if assessment.get("assessment_id"):
        payload["id"] = assessment["assessment_id"]
    if assessment.get("create_time"):
        payload["created_at"] = assessment["create_time"]
    return payload | _mlflow_kind(assessment, metadata)


_MLFLOW_FIELDS = (
    ("assessment_name", str, "must be a string"),
    ("span_id", str, "must be a string"),
    ("rationale", str, "must be a string"),
    ("assessment_id", str, "must be a string"),
    ("create_time", str, "must be an RFC 3339 time string"),
    ("source", Mapping, "must be an object"),
    ("metadata", Mapping, "must be an object"),
    ("feedback", Mapping, "must be an object"),
    ("expectation", Mapping, "must be an object"),
)


def _checked_assessment(assessment: object, trace_id: str) -> Mapping[str, Any]:
    """
    Return ``assessment`` once it is an object of this trace with fields of their types.
    """
    if not isinstance(assessment, Mapping):
        raise FeedbackValidationError("assessment", "must be a JSON object", assessment)
    named = assessment.get("trace_id")
    if named is not None and named != trace_id:
        msg = f"must be the trace of the path ({trace_id!r}) when given"
        raise FeedbackValidationError("assessment.trace_id", msg, named)
    for field, kind, rule in _MLFLOW_FIELDS:
        value = assessment.get(field)
        if value is not None and not isinstance(value, kind):
            raise FeedbackValidationError(f"assessment.{field}", rule, value)
    return assessment


def _mlflow_kind(assessment: Mapping[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """
    The type and value fields of an assessment, by the rules in the module.

    Marks a boolean feedback as thumbs, and keeps a feedback's error in ``metadata``.
    """
    feedback: Mapping[str, Any] | None = assessment.get("feedback")
    expectation: Mapping[str, Any] | None = assessment.get("expectation")
    if (feedback is None) == (expectation is None):
        msg = "must hold either a feedback or an expectation"
        raise FeedbackValidationError("assessment", msg)
    if feedback is None:
        return {"type": "correction", "original": "", "corrected": _expected(expectation or {})}
    value = feedback.get("value")
    if value is None:
        msg = "is required: a feedback that carries an error instead of a value records nothing"
        raise FeedbackValidationError("assessment.feedback.value", msg, feedback.get("error"))
    if feedback.get("error") is not None:
        metadata["mlflow_error"] = feedback["error"]
    if isinstance(value, bool):
        metadata["scale"] = "thumbs"  # True is good and False bad, whatever the thresholds
        return {"type": "rating", "score": int(value)}
    if isinstance(value, int | float):
        return {"type": "rating", "score": value}
    if isinstance(value, str):
        return {"type": "label", "label": value, "input": None}
    return {"type": "label", "label": str(metadata.get("name", "feedback")), "input": value}


def _expected(expectation: Mapping[str, Any]) -> str:
    value = expectation.get("value")
    if isinstance(value, str):
        return value
    if value is not None:
        return orjson.dumps(value).decode()
    serialized = expectation.get("serialized_value")
    if not isinstance(serialized, Mapping) or not isinstance(serialized.get("value"), str):
        msg = "must hold a value or a serialized_value"
        raise FeedbackValidationError("assessment.expectation", msg, dict(expectation))
    form = serialized.get("serialization_format", "JSON_FORMAT")
    if form != "JSON_FORMAT":
        msg = "must be JSON_FORMAT (the only format MLflow writes)"
        raise FeedbackValidationError("assessment.expectation.serialized_value", msg, form)
    return str(serialized["value"])


def mlflow_error(
    exc: FeedbackValidationError,
    assessment: object,
    *,
    prefix: str = "assessment",
    trace_field: str = "trace_id",
) -> FeedbackValidationError:
    """
    Return ``exc`` naming the MLflow field at fault instead of the item's.

    ``prefix`` is where the assessment sits (``assessment`` in a request body,
    ``info.assessments[0]`` in an exported trace, ``""`` for an assessment on its own)
    and ``trace_field`` where its trace id came from.
    """
    kind = (
        "expectation"
        if isinstance(assessment, Mapping) and "expectation" in assessment
        else "feedback"
    )
    value = f"assessment.{kind}.value"
    names = (
        ("context.trace_id", trace_field),
        ("context.span_id", "assessment.span_id"),
        ("context.comment", "assessment.rationale"),
        ("metadata.name", "assessment.assessment_name"),
        ("metadata.mlflow_source", "assessment.source"),
        ("metadata.mlflow_metadata", "assessment.metadata"),
        ("context", "assessment"),
        ("metadata", "assessment"),
        ("created_at", "assessment.create_time"),
        ("id", "assessment.assessment_id"),
        *((ours, value) for ours in ("score", "label", "input", "corrected")),
    )
    field = _renamed(exc, names).field
    if field == "assessment" or field.startswith(("assessment.", "assessment[")):
        rest = field[len("assessment") :]
        field = prefix + rest if prefix else rest.removeprefix(".") or "record"
    return exc.renamed(field)
