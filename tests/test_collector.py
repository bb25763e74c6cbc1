"""Tests of FeedbackCollector: semantics, statistics and every bad-input rule."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from ai_feedback import (
    Err,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConflictError,
    FeedbackItem,
    FeedbackProtocol,
    FeedbackRejectedError,
    FeedbackStorageError,
    FeedbackSummary,
    FeedbackTooLargeError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Ok,
    RejectFeedback,
    Result,
)
from ai_feedback.events import FeedbackStored, FeedbackSubmitted


@pytest.fixture
def store() -> MemoryFeedbackStore:
    """An empty in-memory store."""
    return MemoryFeedbackStore()


@pytest.fixture
def collector(store: MemoryFeedbackStore) -> FeedbackCollector:
    """A synchronous collector over ``store``."""
    return FeedbackCollector(store, FeedbackConfig(async_processing=False))


def test_collector_implements_the_protocol(collector: FeedbackCollector) -> None:
    """FeedbackCollector is a FeedbackProtocol."""
    assert isinstance(collector, FeedbackProtocol)
    assert "MemoryFeedbackStore" in repr(collector)


async def test_submit_feedback_records_a_rating(
    collector: FeedbackCollector, store: MemoryFeedbackStore
) -> None:
    """submit_feedback stores a RATING with trace, model, provider, session and comment."""
    await collector.submit_feedback(
        trace_id="t-1",
        score=4.5,
        comment="Good response",
        metadata={"model": "gpt-4", "provider": "openai", "session_id": "s-1", "source": "ui"},
    )
    [item] = await store.find_by_session("s-1")
    assert item.feedback_type is FeedbackType.RATING
    assert item.value == 4.5
    assert item.context == {
        "trace_id": "t-1",
        "comment": "Good response",
        "model": "gpt-4",
        "provider": "openai",
        "session_id": "s-1",
    }
    assert item.metadata["source"] == "ui"


async def test_blank_comment_is_not_kept(
    collector: FeedbackCollector, store: MemoryFeedbackStore
) -> None:
    """An empty comment (an untouched form field) is dropped, not stored."""
    await collector.submit_feedback("t", 1, comment="", metadata={"session_id": "s"})
    [item] = await store.find_by_session("s")
    assert "comment" not in item.context


async def test_collect_methods_store_each_type(
    collector: FeedbackCollector, store: MemoryFeedbackStore
) -> None:
    """collect_* store the documented values and return the new ids."""
    ctx = {"session_id": "s"}
    ids = [
        await collector.collect_rating(3, context=ctx, metadata={"k": 1}),
        await collector.collect_text("nice", context=ctx),
        await collector.collect_correction("Sydney", "Canberra", context=ctx),
        await collector.collect_label("spam", {"text": "buy"}, context=ctx),
    ]
    items = await store.find_by_session("s")
    assert [i.id for i in items] == ids[::-1]
    by_type = {i.feedback_type: i for i in items}
    assert by_type[FeedbackType.RATING].metadata == {"k": 1}
    assert by_type[FeedbackType.TEXT].value == "nice"
    assert by_type[FeedbackType.CORRECTION].value == {"original": "Sydney", "corrected": "Canberra"}
    assert by_type[FeedbackType.LABEL].value == {"label": "spam", "input": {"text": "buy"}}


async def test_submit_prebuilt_item(
    collector: FeedbackCollector, store: MemoryFeedbackStore
) -> None:
    """submit() records a caller-built item and returns its id."""
    item = FeedbackItem(feedback_type=FeedbackType.TEXT, value="hi")
    assert await collector.submit(item) == item.id
    assert await store.get(item.id) == item
    with pytest.raises(FeedbackValidationError, match="'item'"):
        await collector.submit({"value": 1})  # type: ignore[arg-type]


async def test_stats_filter_by_model_and_provider(collector: FeedbackCollector) -> None:
    """get_feedback_stats really filters, and reports distribution, percentiles and models."""
    rows = [
        (5, "gpt-4", "openai"),
        (3, "gpt-4", "azure"),
        (1, "claude", "anthropic"),
        (4, "claude", "anthropic"),
    ]
    for i, (score, model, provider) in enumerate(rows):
        await collector.submit_feedback(
            f"t{i}", score, metadata={"model": model, "provider": provider}
        )
    await collector.collect_text("meh", context={"model": "claude"})

    overall = await collector.get_feedback_stats()
    assert overall["total_count"] == 5
    assert overall["average_rating"] == pytest.approx(13 / 4)
    assert overall["by_type"] == {"rating": 4, "text": 1, "correction": 0, "label": 0}
    assert overall["rating"]["distribution"] == {"1": 1, "3": 1, "4": 1, "5": 1}
    assert overall["rating"]["percentiles"] == {"p50": 3, "p90": 5, "p99": 5}
    assert overall["by_model"] == {
        "gpt-4": {"count": 2, "average_rating": 4.0},
        "claude": {"count": 3, "average_rating": 2.5},
    }

    gpt = await collector.get_feedback_stats(model="gpt-4")
    assert (gpt["total_count"], gpt["average_rating"]) == (2, 4.0)
    assert gpt["by_model"] == {"gpt-4": {"count": 2, "average_rating": 4.0}}
    openai = await collector.get_feedback_stats(provider="openai")
    assert (openai["total_count"], openai["average_rating"]) == (1, 5.0)
    both = await collector.get_feedback_stats(model="gpt-4", provider="azure")
    assert (both["total_count"], both["average_rating"]) == (1, 3.0)
    none = await collector.get_feedback_stats(model="unknown")
    assert (none["total_count"], none["average_rating"]) == (0, None)


async def test_stats_without_ratings(collector: FeedbackCollector) -> None:
    """Without ratings the average is None and the rating block is empty."""
    await collector.collect_text("only text")
    stats = await collector.get_feedback_stats()
    assert stats["average_rating"] is None
    assert stats["rating"] == {
        "count": 0,
        "min": None,
        "max": None,
        "percentiles": {},
        "distribution": None,
    }


async def test_disabled_collector_stores_nothing_but_validates(store: MemoryFeedbackStore) -> None:
    """With enabled=False submissions are a no-op, yet bad input still raises."""
    collector = FeedbackCollector(store, FeedbackConfig(enabled=False))
    await collector.submit_feedback("t", 5)
    assert await collector.collect_text("x")
    assert len(store) == 0
    with pytest.raises(FeedbackValidationError):
        await collector.submit_feedback("", 5)


class _AggregateOnlyStore:
    """A store implementing just the four protocol methods."""

    def __init__(self, result: Result[str, Exception]) -> None:
        self.result = result

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        return self.result

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        return []

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        return []

    async def aggregate(self, *, window_hours: int = 24) -> FeedbackSummary:
        return FeedbackSummary(7, 2.0, {"rating": 7, "text": 0, "correction": 0, "label": 0})


async def test_protocol_only_store_gives_unfiltered_stats() -> None:
    """A store with only the protocol's methods serves unfiltered stats and refuses filters."""
    collector = FeedbackCollector(_AggregateOnlyStore(Ok("x")))
    stats = await collector.get_feedback_stats()
    assert (stats["total_count"], stats["average_rating"]) == (7, 2.0)
    with pytest.raises(FeedbackStorageError, match="cannot filter"):
        await collector.get_feedback_stats(model="m")


async def test_store_refusal_raises_storage_error() -> None:
    """An Err from the store reaches the caller as FeedbackStorageError, chained."""
    boom = ConnectionError("db down")
    collector = FeedbackCollector(
        _AggregateOnlyStore(Err(boom)), FeedbackConfig(async_processing=False)
    )
    with pytest.raises(FeedbackStorageError, match="db down") as info:
        await collector.submit_feedback("t", 1)
    assert info.value.__cause__ is boom


def test_collector_needs_a_store() -> None:
    """A collector refuses an object that is not a store."""
    with pytest.raises(FeedbackValidationError, match="'store'"):
        FeedbackCollector(object())  # type: ignore[arg-type]


# --- bad input: every rule, each leaving the store empty ---------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _call(method: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return method, kwargs


BAD_CALLS = [
    (_call("submit_feedback", trace_id="", score=1), "trace_id", "empty"),
    (_call("submit_feedback", trace_id="   ", score=1), "trace_id", "blank"),
    (_call("submit_feedback", trace_id=None, score=1), "trace_id", "must be a string"),
    (_call("submit_feedback", trace_id="t", score=True), "score", "not bool"),
    (_call("submit_feedback", trace_id="t", score="5"), "score", "must be a number"),
    (_call("submit_feedback", trace_id="t", score=None), "score", "must be a number"),
    (_call("submit_feedback", trace_id="t", score=math.nan), "score", "finite"),
    (_call("submit_feedback", trace_id="t", score=-math.inf), "score", "finite"),
    (_call("submit_feedback", trace_id="t", score=1, comment=3), "comment", "string"),
    (_call("submit_feedback", trace_id="t", score=1, metadata=[1]), "metadata", "dict"),
    (
        _call("submit_feedback", trace_id="t", score=1, metadata={"model": 4}),
        "metadata.model",
        "string",
    ),
    (
        _call("submit_feedback", trace_id="t", score=1, metadata={"session_id": ""}),
        "metadata.session_id",
        "empty",
    ),
    (
        _call("submit_feedback", trace_id="t", score=1, metadata={"x": object()}),
        "metadata.x",
        "JSON",
    ),
    (_call("submit_feedback", trace_id="t", score=1, metadata={"x": {1, 2}}), "metadata.x", "JSON"),
    (_call("collect_rating", score=False), "score", "not bool"),
    (_call("collect_rating", score=1, context="c"), "context", "dict"),
    (_call("collect_text", text=""), "text", "empty"),
    (_call("collect_text", text=b"bytes"), "text", "string"),
    (_call("collect_correction", original=None, corrected="x"), "original", "string"),
    (_call("collect_correction", original="x", corrected=2), "corrected", "string"),
    (_call("collect_label", label="", input_data=1), "label", "empty"),
    (_call("collect_label", label="l", input_data=math.inf), "input_data", "NaN"),
    (_call("collect_label", label="l", input_data={1: 2}), "input_data", "string keys"),
    (_call("get_feedback_stats", model=""), "model", "empty"),
    (_call("submit_feedback", trace_id="t\ud800", score=1), "trace_id", "lone surrogates"),
    (_call("submit_feedback", trace_id="t", score=1e200), "score", "between"),
    (_call("collect_text", text="nul \x00 inside"), "text", "NUL"),
    (_call("collect_text", text="half \udfff"), "text", "lone surrogates"),
    (_call("collect_rating", score=1, context={"k": "\ud800"}), "context.k", "surrogates"),
    (_call("collect_rating", score=1, metadata={"k\x00": 1}), "metadata", "NUL"),
    (_call("collect_label", label="l", input_data=_nested(100)), "input_data", "nested deeper"),
    (_call("collect_label", label="l", input_data=[1, {"a": "\x00"}]), "input_data[1].a", "NUL"),
    (_call("collect_label", label="l", input_data="x" * 60_000), "input_data", "at most"),
    (_call("collect_rating", score=1, context=_nested(5000)), "context", "nested deeper"),
    (_call("get_feedback_stats", provider=5), "provider", "string"),
]


@pytest.mark.parametrize(("call", "field", "rule"), BAD_CALLS)
async def test_bad_input_names_field_and_rule_and_stores_nothing(
    collector: FeedbackCollector,
    store: MemoryFeedbackStore,
    call: tuple[str, dict[str, Any]],
    field: str,
    rule: str,
) -> None:
    """Each rejected call raises FeedbackValidationError naming field and rule; stores nothing."""
    method, kwargs = call
    with pytest.raises(FeedbackValidationError) as info:
        await getattr(collector, method)(**kwargs)
    # Nested values are named by their whole path, e.g. context.a.a.a...
    assert info.value.field == field or info.value.field.startswith(field + ".")
    assert rule in str(info.value)
    assert field in str(info.value)
    assert len(store) == 0


TEXT_LIMIT = 10_000


@pytest.mark.parametrize(
    ("method", "make_kwargs", "field"),
    [
        ("collect_text", lambda s: {"text": s}, "text"),
        ("submit_feedback", lambda s: {"trace_id": "t", "score": 1, "comment": s}, "comment"),
        ("collect_correction", lambda s: {"original": s, "corrected": "x"}, "original"),
        ("collect_correction", lambda s: {"original": "x", "corrected": s}, "corrected"),
        ("collect_label", lambda s: {"label": s, "input_data": None}, "label"),
    ],
)
async def test_text_limit_boundary(
    collector: FeedbackCollector,
    store: MemoryFeedbackStore,
    method: str,
    make_kwargs: Any,
    field: str,
) -> None:
    """Exactly 10,000 characters pass; 10,001 raise FeedbackTooLargeError naming the field."""
    await getattr(collector, method)(**make_kwargs("é" * TEXT_LIMIT))
    assert len(store) == 1
    with pytest.raises(FeedbackTooLargeError) as info:
        await getattr(collector, method)(**make_kwargs("é" * (TEXT_LIMIT + 1)))
    assert info.value.field == field
    assert (info.value.size, info.value.limit) == (TEXT_LIMIT + 1, TEXT_LIMIT)
    assert "10,000" in str(info.value)
    assert len(store) == 1


def _payload_of_size(chars: int) -> dict[str, str]:
    overhead = len(orjson.dumps({"k": ""}))
    payload = {"k": "x" * (chars - overhead)}
    assert len(orjson.dumps(payload).decode()) == chars
    return payload


@pytest.mark.parametrize("field", ["context", "metadata"])
async def test_payload_limit_boundary(
    collector: FeedbackCollector, store: MemoryFeedbackStore, field: str
) -> None:
    """A payload of exactly 50,000 serialized characters passes; 50,001 is too large."""
    payload: dict[str, Any] = {field: _payload_of_size(50_000)}
    await collector.collect_rating(1, **payload)
    with pytest.raises(FeedbackTooLargeError) as info:
        await collector.collect_rating(1, **{field: _payload_of_size(50_001)})  # type: ignore[arg-type]
    assert info.value.field == field
    assert len(store) == 1


async def test_payload_limit_counts_characters_not_bytes(
    collector: FeedbackCollector, store: MemoryFeedbackStore
) -> None:
    """Multi-byte characters count once: 49,990 'é' fit although they take ~100 KB."""
    await collector.collect_rating(1, metadata={"k": "é" * 49_990})
    assert len(store) == 1


async def test_label_input_limit(collector: FeedbackCollector, store: MemoryFeedbackStore) -> None:
    """A label's input over the payload limit is rejected as input_data."""
    with pytest.raises(FeedbackTooLargeError) as info:
        await collector.collect_label("l", {"text": "x" * 50_000})
    assert info.value.field == "input_data"
    assert len(store) == 0


async def test_limits_follow_the_config(store: MemoryFeedbackStore) -> None:
    """max_text_length and max_payload_chars come from FeedbackConfig."""
    collector = FeedbackCollector(store, FeedbackConfig(max_text_length=5, max_payload_chars=20))
    await collector.collect_text("12345")
    with pytest.raises(FeedbackTooLargeError, match="at most 5 characters"):
        await collector.collect_text("123456")
    with pytest.raises(FeedbackTooLargeError, match="'metadata'"):
        await collector.collect_text("x", metadata={"k": "x" * 20})


@pytest.mark.parametrize("async_processing", [True, False])
async def test_submit_payloads_reports_each_payload(async_processing: bool) -> None:
    """A batch of payloads: valid ones are recorded, invalid ones come back as errors."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=async_processing))
    payloads: list[Any] = [
        {"score": 4},
        {"score": "x"},
        {"type": "text", "text": "hi", "id": "t-1"},
        7,
    ]
    results = await collector.submit_payloads(payloads)
    assert isinstance(results[0], str)
    assert isinstance(results[1], FeedbackValidationError)
    assert results[1].field == "score"
    assert results[2] == "t-1"
    assert isinstance(results[3], FeedbackValidationError)
    await collector.flush()
    assert len(store) == 2
    with pytest.raises(FeedbackValidationError, match="'payloads'"):
        await collector.submit_payloads("not a list")  # type: ignore[arg-type]
    await collector.aclose()


async def test_submit_payloads_without_async_processing_reports_store_errors_per_item() -> None:
    """Stored one by one, a conflict or a rejection refuses its payload only."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))

    def no_fives(item: FeedbackItem) -> FeedbackItem:
        if item.value == 5:
            raise RejectFeedback("no fives")
        return item

    collector.pipeline.add_step(no_fives)
    await collector.submit_payload({"score": 1, "id": "known"})
    results = await collector.submit_payloads(
        [
            {"score": 2, "id": "a"},
            {"score": 3, "id": "known"},
            {"score": 5},
            {"score": 4, "id": "b"},
        ]
    )
    assert results[0] == "a"
    assert isinstance(results[1], FeedbackConflictError)
    assert isinstance(results[2], FeedbackRejectedError)
    assert results[3] == "b"
    assert sorted(i.id for i in await store.query()) == ["a", "b", "known"]


@pytest.mark.parametrize("async_processing", [True, False])
async def test_a_batch_announces_each_accepted_item_to_subscribers(
    async_processing: bool,
) -> None:
    """Subscribers of FeedbackSubmitted hear of each accepted payload of a batch, once."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=async_processing, store_raw_payloads=True),
    )
    heard: list[FeedbackSubmitted] = []
    collector.events.subscribe(FeedbackSubmitted, heard.append)
    results = await collector.submit_payloads(
        [{"score": 4, "id": "a"}, {"score": "x"}, {"score": 2}]
    )
    assert [e.item.id for e in heard] == [results[0], results[2]]
    assert heard[0].raw_payload == {"score": 4, "id": "a"}
    await collector.aclose()


@pytest.mark.parametrize("async_processing", [False, True])
async def test_the_callers_dicts_never_reach_the_stored_item(async_processing: bool) -> None:
    """Items are copied once, when built: changing the caller's dicts later changes nothing."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=async_processing))
    context: dict[str, Any] = {"model": "m", "tags": ["a"]}
    metadata: dict[str, Any] = {"source": "ui", "nested": {"k": 1}}
    item_id = await collector.collect_rating(3, context=context, metadata=metadata)
    await collector.flush()
    context["tags"].append("b")
    context["model"] = "other"
    metadata["nested"]["k"] = 2
    stored = await store.get(item_id)
    assert stored is not None
    assert stored.context == {"model": "m", "tags": ["a"]}
    assert stored.metadata == {"source": "ui", "nested": {"k": 1}}
    await collector.aclose()


async def test_a_store_with_stricter_limits_still_checks_what_the_collector_built() -> None:
    """The store skips its own check only for items checked against its very limits."""
    store = MemoryFeedbackStore(limits=FeedbackConfig(max_payload_chars=40).limits)
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    with pytest.raises(FeedbackTooLargeError) as raised:
        await collector.collect_rating(3, metadata={"note": "x" * 60})
    assert raised.value.field == "metadata"
    assert await store.aggregate(window_hours=24) == FeedbackSummary(
        0, None, {t.value: 0 for t in FeedbackType}
    )
    await collector.collect_rating(3, metadata={"note": "short"})
    assert (await store.aggregate(window_hours=24)).total_count == 1


async def test_items_a_step_replaced_are_checked_against_the_limits_again() -> None:
    """A step that enlarges an item past the limits fails it; nothing over the limit is stored."""
    store = MemoryFeedbackStore()
    config = FeedbackConfig(async_processing=False, max_payload_chars=100)
    collector = FeedbackCollector(store, config)
    collector.pipeline.add_step(
        lambda item: item.replace(metadata={"blob": "y" * 200}), name="enlarge"
    )
    with pytest.raises(FeedbackTooLargeError):
        await collector.collect_rating(4)
    assert (await store.aggregate(window_hours=24)).total_count == 0


@pytest.mark.parametrize("async_processing", [False, True])
async def test_no_reference_held_elsewhere_reaches_the_stored_item(async_processing: bool) -> None:
    """The submitted item, event subscribers' and steps' items are not what the store holds."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=async_processing))
    seen: list[FeedbackItem] = []
    collector.events.subscribe(FeedbackStored, lambda event: seen.append(event.item))
    kept: list[FeedbackItem] = []

    def step(item: FeedbackItem) -> FeedbackItem:
        kept.append(item.replace(metadata={"k": "v"}))
        return kept[-1]

    collector.pipeline.add_step(step, name="keeps")
    item = FeedbackItem(FeedbackType.RATING, 4, context={"session_id": "s1"})
    await collector.submit(item)
    await collector.flush()
    item.context["session_id"] = "s2"
    seen[0].context["tag"] = "changed"
    kept[0].metadata["k"] = "changed"
    [stored] = await store.find_by_session("s1")
    assert stored.context == {"session_id": "s1"}
    assert stored.metadata == {"k": "v"}
    await collector.aclose()
