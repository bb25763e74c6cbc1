"""Tests of FeedbackType, FeedbackItem, FeedbackSummary and FeedbackStats."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ai_feedback import (
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackTooLargeError,
    FeedbackType,
    FeedbackValidationError,
)
from ai_feedback._models import new_id


def test_feedback_type_values() -> None:
    """The four types are str enums with the seed's values."""
    assert [t.value for t in FeedbackType] == ["rating", "text", "correction", "label"]
    assert FeedbackType("rating") is FeedbackType.RATING
    assert isinstance(FeedbackType.RATING, str)
    assert str(FeedbackType.LABEL) == "label"


def test_item_defaults_and_alias() -> None:
    """An item gets a UUID id, an aware UTC timestamp and empty dicts; .type aliases the type."""
    before = datetime.now(UTC)
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=5)
    assert uuid.UUID(item.id).version == 7
    assert before <= item.created_at <= datetime.now(UTC)
    assert item.created_at.tzinfo is UTC
    assert item.context == {}
    assert item.metadata == {}
    assert item.type is FeedbackType.RATING


def test_ids_are_unique_and_time_ordered() -> None:
    """Generated ids are distinct and sort by creation millisecond."""
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_item_is_immutable() -> None:
    """Assigning a field raises."""
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.value = 1  # type: ignore[misc]


def test_item_copies_the_callers_dicts() -> None:
    """Changing the dicts passed in does not change the item."""
    context = {"model": "gpt-4", "tags": ["a"]}
    item = FeedbackItem(feedback_type="rating", value=4, context=context)  # type: ignore[arg-type]
    context["model"] = "other"
    context["tags"].append("b")  # type: ignore[attr-defined]
    assert item.context == {"model": "gpt-4", "tags": ["a"]}
    assert item.feedback_type is FeedbackType.RATING


def test_item_accessors_read_the_indexed_context() -> None:
    """session_id, trace_id, model and provider come from the context."""
    item = FeedbackItem(
        feedback_type=FeedbackType.TEXT,
        value="ok",
        context={"session_id": "s", "trace_id": "t", "model": "m", "provider": "p"},
    )
    assert (item.session_id, item.trace_id, item.model, item.provider) == ("s", "t", "m", "p")


def test_round_trip_through_dict() -> None:
    """from_dict(to_dict()) gives an equal item."""
    item = FeedbackItem(
        feedback_type=FeedbackType.LABEL,
        value={"label": "spam", "input": {"text": "buy now", "n": [1, 2.5]}},
        context={"model": "m"},
        metadata={"source": "api"},
    )
    data = item.to_dict()
    assert data["feedback_type"] == "label"
    assert isinstance(data["created_at"], str)
    assert FeedbackItem.from_dict(data) == item


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    """from_dict names an unknown key, a missing key and a bad timestamp."""
    with pytest.raises(FeedbackValidationError, match="'colour'"):
        FeedbackItem.from_dict({"feedback_type": "text", "value": "x", "colour": 1})
    with pytest.raises(FeedbackValidationError, match="'value': is required"):
        FeedbackItem.from_dict({"feedback_type": "text"})
    with pytest.raises(FeedbackValidationError, match="'created_at'"):
        FeedbackItem.from_dict({"feedback_type": "text", "value": "x", "created_at": "yesterday"})
    with pytest.raises(FeedbackValidationError, match="'data'"):
        FeedbackItem.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(FeedbackValidationError, match="'data': must have string keys"):
        FeedbackItem.from_dict({1: "x", "feedback_type": "text", "value": "x"})  # type: ignore[dict-item]


def test_replace_validates() -> None:
    """replace() returns a changed copy and validates the change."""
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=3)
    assert item.replace(value=4).value == 4
    assert item.replace(value=4).id == item.id
    with pytest.raises(FeedbackValidationError, match="'value'"):
        item.replace(value="four")


def test_created_at_is_normalised_to_utc() -> None:
    """An aware timestamp in another zone is converted to UTC."""
    paris = timezone(timedelta(hours=1))
    item = FeedbackItem(
        feedback_type=FeedbackType.RATING,
        value=1,
        created_at=datetime(2026, 1, 1, 12, tzinfo=paris),
    )
    assert item.created_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert item.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"feedback_type": "vote", "value": 1}, "feedback_type", "must be one of"),
        ({"feedback_type": 3, "value": 1}, "feedback_type", "must be one of"),
        ({"feedback_type": "rating", "value": True}, "value", "not bool"),
        ({"feedback_type": "rating", "value": "5"}, "value", "must be a number"),
        ({"feedback_type": "rating", "value": math.nan}, "value", "finite"),
        ({"feedback_type": "rating", "value": math.inf}, "value", "finite"),
        ({"feedback_type": "rating", "value": 2**70}, "value", "64 bits"),
        ({"feedback_type": "rating", "value": 10**5000}, "value", "64 bits"),  # repr fails
        ({"feedback_type": "text", "value": "x", "context": {"n": 2**64}}, "context.n", "64 bits"),
        ({"feedback_type": "text", "value": "  "}, "value", "empty or blank"),
        ({"feedback_type": "text", "value": 5}, "value", "must be a string"),
        ({"feedback_type": "correction", "value": "x"}, "value", "must be a dict"),
        (
            {"feedback_type": "correction", "value": {"original": "a"}},
            "value.corrected",
            "required",
        ),
        (
            {"feedback_type": "correction", "value": {"original": 1, "corrected": "b"}},
            "value.original",
            "must be a string",
        ),
        ({"feedback_type": "label", "value": {"input": 1}}, "value.label", "required"),
        ({"feedback_type": "label", "value": {"label": ""}}, "value.label", "empty"),
        ({"feedback_type": "label", "value": ["spam"]}, "value", "must be a dict"),
        ({"feedback_type": "text", "value": "x", "context": []}, "context", "must be a dict"),
        ({"feedback_type": "text", "value": "x", "metadata": "m"}, "metadata", "must be a dict"),
        ({"feedback_type": "text", "value": "x", "context": {1: "a"}}, "context", "string keys"),
        (
            {"feedback_type": "text", "value": "x", "metadata": {"at": datetime.now(UTC)}},
            "metadata.at",
            "JSON values",
        ),
        (
            {"feedback_type": "text", "value": "x", "metadata": {"n": [math.nan]}},
            "metadata.n[0]",
            "NaN",
        ),
        (
            {"feedback_type": "text", "value": "x", "context": {"session_id": 7}},
            "context.session_id",
            "must be a string",
        ),
        (
            {"feedback_type": "text", "value": "x", "context": {"model": ""}},
            "context.model",
            "empty",
        ),
        ({"feedback_type": "text", "value": "x", "id": ""}, "id", "empty"),
        ({"feedback_type": "text", "value": "x", "id": "x" * 257}, "id", "at most 256"),
        (
            {"feedback_type": "text", "value": "x", "created_at": datetime(2026, 1, 1)},
            "created_at",
            "timezone-aware",
        ),
        (
            {"feedback_type": "text", "value": "x", "created_at": "2026-01-01"},
            "created_at",
            "must be a datetime",
        ),
        (
            {"feedback_type": "text", "value": "x", "created_at": datetime.max.replace(tzinfo=UTC)},
            "created_at",
            "between 0001-01-02 and 9999-12-30",
        ),
        (
            {"feedback_type": "text", "value": "x", "created_at": datetime.min.replace(tzinfo=UTC)},
            "created_at",
            "between",
        ),
        (
            {
                "feedback_type": "text",
                "value": "x",
                "created_at": datetime.max.replace(tzinfo=timezone(timedelta(hours=-12))),
            },
            "created_at",
            "between",
        ),
        (
            {
                "feedback_type": "text",
                "value": "x",
                "created_at": datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
            },
            "created_at",
            "between",
        ),
    ],
)
def test_invalid_items_name_field_and_rule(
    kwargs: dict[str, object], field: str, rule: str
) -> None:
    """Each invalid field raises FeedbackValidationError naming the field and the rule."""
    with pytest.raises(FeedbackValidationError) as info:
        FeedbackItem(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert rule in str(info.value)


def test_tuples_become_lists() -> None:
    """JSON has no tuples; they are stored as lists."""
    item = FeedbackItem(feedback_type=FeedbackType.TEXT, value="x", metadata={"t": (1, 2)})
    assert item.metadata == {"t": [1, 2]}


def test_stats_to_dict_keeps_the_seed_keys_first() -> None:
    """FeedbackStats.to_dict starts with total_count, average_rating and by_type."""
    summary = FeedbackSummary(2, 4.5, {"rating": 2, "text": 0, "correction": 0, "label": 0})
    data = FeedbackStats(summary, 24.0).to_dict()
    assert list(data)[:3] == ["total_count", "average_rating", "by_type"]
    assert data["by_type"]["rating"] == 2
    assert data["rating"]["distribution"] is None


def test_an_overlong_id_is_not_said_to_be_configurable() -> None:
    """The 256-character id limit is fixed: its error does not point at FeedbackConfig."""
    with pytest.raises(FeedbackTooLargeError) as info:
        FeedbackItem(FeedbackType.RATING, 1, context={"trace_id": "t" * 300})
    assert (
        str(info.value) == "Invalid 'context.trace_id': must be at most 256 characters but is 300."
    )
    renamed = info.value.renamed("trace_id")
    assert "FeedbackConfig" not in str(renamed)


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(hours=-1)])
def test_a_filter_whose_window_holds_nothing_is_refused(gap: timedelta) -> None:
    """Until must be later than since: a reversed window is a mistake, named."""
    since = datetime(2026, 11, 30, tzinfo=UTC)
    with pytest.raises(FeedbackValidationError, match="must be later than since") as caught:
        FeedbackFilter(since=since, until=since + gap)
    assert caught.value.field == "until"
    assert FeedbackFilter(since=since, until=since + timedelta(microseconds=1)).until is not None
