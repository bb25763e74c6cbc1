"""Tests of FeedbackContext and the bounded CaptureStore, and joining captures to feedback."""

from __future__ import annotations

import time

import pytest

from ai_feedback import (
    Capture,
    CaptureStore,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackContext,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    current_context_id,
)


@pytest.fixture
def collector() -> FeedbackCollector:
    """A synchronous collector over a memory store."""
    return FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))


async def test_context_captures_input_output_and_joins_feedback(
    collector: FeedbackCollector,
) -> None:
    """A FeedbackContext's capture is joined into feedback submitted against its id."""
    async with collector.context("summarize", input={"prompt": "Summarize X"}) as ctx:
        assert current_context_id() == ctx.context_id
        ctx.output = "X is Y."
    assert current_context_id() is None
    await collector.submit_feedback(trace_id=ctx.context_id, score=1, comment="wrong")
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    captured = item.context["captured"]
    assert captured["name"] == "summarize"
    assert captured["input"] == {"prompt": "Summarize X"}
    assert captured["output"] == "X is Y."
    assert captured["error"] is None
    assert captured["duration_ms"] >= 0
    assert item.context["comment"] == "wrong"


async def test_context_extra_is_kept_and_bounded(collector: FeedbackCollector) -> None:
    """Extra data set on a context is captured; when too large it is cut under one key."""
    async with collector.context("op", context_id="small") as ctx:
        ctx.extra["tokens"] = 42
    async with collector.context("op", context_id="large") as ctx:
        ctx.extra["blob"] = "z" * 20_000
    small, large = collector.captures.get("small"), collector.captures.get("large")
    assert small is not None
    assert small.extra == {"tokens": 42}
    assert large is not None
    assert set(large.extra) == {"value"}
    assert "truncated" in large.extra["value"]


async def test_context_records_the_error_and_reraises(collector: FeedbackCollector) -> None:
    """An exception inside the block is captured and propagates."""
    with pytest.raises(TimeoutError):
        async with collector.context("llm-call", input="q", context_id="ctx-1"):
            raise TimeoutError("model timed out")
    capture = collector.captures.get("ctx-1")
    assert capture is not None
    assert capture.error == "TimeoutError('model timed out')"
    await collector.collect_text("it hung", context={"trace_id": "ctx-1"})
    [item] = await collector.store.find_by_type(FeedbackType.TEXT)
    assert item.context["captured"]["error"] == "TimeoutError('model timed out')"


async def test_feedback_without_a_capture_is_unchanged(collector: FeedbackCollector) -> None:
    """Feedback whose trace id was never captured has no captured key."""
    await collector.submit_feedback("unknown-trace", 3)
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    assert "captured" not in item.context


def test_capture_store_is_bounded_by_count() -> None:
    """Past max_entries the oldest captures are dropped and counted."""
    store = CaptureStore(max_entries=3)
    for i in range(5):
        store.record(Capture(context_id=f"c{i}", name="op"))
    assert len(store) == 3
    assert store.dropped == 2
    assert store.get("c0") is None
    assert store.get("c4") is not None
    assert "entries=3" in repr(store)


def test_capture_store_is_bounded_by_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture older than max_age_seconds is gone."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    store = CaptureStore(max_age_seconds=60)
    store.record(Capture(context_id="old", name="op"))
    now[0] += 30
    store.record(Capture(context_id="new", name="op"))
    now[0] += 31
    assert store.get("old") is None
    assert store.get("new") is not None
    now[0] += 30
    assert len(store) == 0


def test_large_and_odd_values_are_bounded() -> None:
    """Inputs are cut to max_chars and non-JSON values become their repr."""
    store = CaptureStore(max_chars=100)
    cut = store.bounded("x" * 500)
    assert cut == "x" * 75 + "... [truncated 425 chars]"
    assert len(cut) == 100
    assert store.bounded({1, 2}) == "{1, 2}"
    assert store.bounded({"a": [1]}) == {"a": [1]}
    big = store.bounded({"k": "y" * 500})
    assert isinstance(big, str)
    assert len(big) <= 100


async def test_huge_capture_never_costs_the_feedback() -> None:
    """When the capture would push context over the limit, only its outline is joined."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=False, max_payload_chars=500, capture_max_chars=400),
    )
    async with collector.context("op", input="i" * 1000, context_id="big") as ctx:
        ctx.output = "o" * 1000
    await collector.submit_feedback("big", 2)
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    assert item.context["captured"] == {"name": "op", "error": None, "truncated": True}


@pytest.mark.parametrize("async_processing", [False, True])
async def test_a_capture_whose_outline_does_not_fit_is_left_out(async_processing: bool) -> None:
    """A context near the limit keeps the user's feedback: no capture rather than no item."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=async_processing, max_payload_chars=500),
    )
    async with collector.context("op", input="i" * 1000, context_id="near") as ctx:
        ctx.output = "o" * 1000
    await collector.collect_rating(1, trace_id="near", context={"blob": "z" * 440})
    await collector.flush()
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    assert "captured" not in item.context
    assert collector.failures == []
    await collector.aclose()


async def test_a_capture_is_measured_in_characters_not_bytes() -> None:
    """Non-ASCII text counts once per character, as the limit does: the capture is joined."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=False, max_payload_chars=1000, capture_max_chars=400),
    )
    async with collector.context("op", input="😀" * 300, context_id="emoji") as ctx:
        ctx.output = "é" * 300
    await collector.submit_feedback("emoji", 2)
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    assert item.context["captured"]["input"] == "😀" * 300


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_age_seconds": -1}, "max_age_seconds"),
        ({"max_chars": True}, "max_chars"),
    ],
)
def test_capture_store_validates_bounds(kwargs: dict[str, object], field: str) -> None:
    """Bounds must be positive numbers."""
    with pytest.raises(FeedbackValidationError) as info:
        CaptureStore(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_context_validates_arguments() -> None:
    """A context needs a capture store, a name and a usable id."""
    with pytest.raises(FeedbackValidationError, match="'captures'"):
        FeedbackContext("not a store", "op")  # type: ignore[arg-type]
    with pytest.raises(FeedbackValidationError, match="'name'"):
        FeedbackContext(CaptureStore(), "")
    with pytest.raises(FeedbackValidationError, match="'context_id'"):
        FeedbackContext(CaptureStore(), "op", context_id=" ")
    assert "'op'" in repr(FeedbackContext(CaptureStore(), "op"))
