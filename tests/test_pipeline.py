"""Tests of processors, steps, events and raw payloads, in sync and async mode."""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from typing import Any

import pytest

from ai_feedback import (
    EventBus,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackFailed,
    FeedbackItem,
    FeedbackProcessed,
    FeedbackProcessingError,
    FeedbackRejectedError,
    FeedbackStored,
    FeedbackSubmitted,
    FeedbackTooLargeError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Pipeline,
    ProcessorRegistry,
    RejectFeedback,
)
from ai_feedback._validation import DEFAULT_LIMITS, MAX_DEPTH, check_normalized_length
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.fakes import ProtocolOnlyStore

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def redact_emails(item: FeedbackItem) -> FeedbackItem:
    """A step that hides e-mail addresses in text feedback."""
    if item.feedback_type is FeedbackType.TEXT:
        return item.replace(value=EMAIL.sub("[email]", item.value))
    return item


async def reject_spam(item: FeedbackItem) -> FeedbackItem:
    """An async step that rejects texts mentioning casinos."""
    if item.feedback_type is FeedbackType.TEXT and "casino" in item.value:
        raise RejectFeedback("looks like spam")
    return item


class Sentiment:
    """The guide's example of a custom processor: tags text with a naive sentiment."""

    async def __call__(self, item: FeedbackItem) -> FeedbackItem:
        text = item.value.lower()
        mood = "negative" if any(w in text for w in ("bad", "wrong", "awful")) else "positive"
        return item.replace(metadata={**item.metadata, "sentiment": mood})


@pytest.fixture(params=[False, True], ids=["sync", "async"])
async def collector(request: pytest.FixtureRequest) -> Any:
    """A collector in sync and in async mode over a fresh memory store."""
    config = FeedbackConfig(
        async_processing=request.param, batch_max_delay_ms=1, store_raw_payloads=True
    )
    collector = FeedbackCollector(MemoryFeedbackStore(), config)
    yield collector
    await collector.aclose()


async def _stored(collector: FeedbackCollector, item_id: str) -> FeedbackItem | None:
    await collector.flush()
    return await collector.store.get(item_id)  # type: ignore[attr-defined, no-any-return]


async def test_builtin_processors_normalize_text(collector: FeedbackCollector) -> None:
    """The built-in text and label processors strip whitespace and apply NFC."""
    text_id = await collector.collect_text("  Cafe\u0301 is great \n")
    label_id = await collector.collect_label("  spam ", "buy now")
    assert (await _stored(collector, text_id)).value == "Café is great"  # type: ignore[union-attr]
    assert (await _stored(collector, label_id)).value["label"] == "spam"  # type: ignore[union-attr]


def test_registry_has_one_processor_per_type() -> None:
    """Out of the box the four type keys are registered."""
    registry = ProcessorRegistry()
    assert registry.keys() == ["correction", "label", "rating", "text"]
    assert "rating" in registry
    assert "keys=" in repr(registry)


async def test_custom_processor_is_dispatched_by_key(collector: FeedbackCollector) -> None:
    """A processor registered as "sentiment" handles items submitted with that key."""
    collector.pipeline.processors.register("sentiment", Sentiment())
    sad = await collector.collect_text("This answer is wrong", processor="sentiment")
    plain = await collector.collect_text("This answer is wrong")
    assert (await _stored(collector, sad)).metadata == {"sentiment": "negative"}  # type: ignore[union-attr]
    assert (await _stored(collector, plain)).metadata == {}  # type: ignore[union-attr]


def test_registry_rejects_bad_registrations() -> None:
    """Duplicate keys need replace=True; keys must be non-blank; processors callable."""
    registry = ProcessorRegistry()
    with pytest.raises(FeedbackValidationError, match="already registered"):
        registry.register("text", Sentiment())
    registry.register("text", Sentiment(), replace=True)
    with pytest.raises(FeedbackValidationError, match="'key'"):
        registry.register(" ", Sentiment())
    with pytest.raises(FeedbackValidationError, match="'processor'"):
        registry.register("x", "not callable")  # type: ignore[arg-type]


async def test_unknown_processor_key_is_a_clear_error(collector: FeedbackCollector) -> None:
    """An unknown key raises FeedbackValidationError listing the known keys; nothing stored."""
    with pytest.raises(FeedbackValidationError) as info:
        await collector.collect_text("x", processor="sentimnt")
    assert info.value.field == "processor"
    assert "known: 'correction', 'label', 'rating', 'text'" in str(info.value)
    await collector.flush()
    assert len(collector.store) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("async_processing", [False, True])
async def test_processor_of_another_type_is_a_validation_error(async_processing: bool) -> None:
    """Naming another type's built-in processor is refused up front, naming 'processor'."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=async_processing))
    with pytest.raises(FeedbackValidationError) as info:
        await collector.collect_rating(3, processor="text")
    assert info.value.field == "processor"
    assert "built-in processor of text feedback" in str(info.value)
    with pytest.raises(FeedbackValidationError, match="'processor'"):
        await collector.submit_payload({"type": "rating", "processor": "text", "score": 3})
    await collector.flush()
    assert len(store) == 0
    assert collector.failures == []
    await collector.aclose()


async def test_a_replaced_builtin_may_take_other_types() -> None:
    """A built-in key replaced by the user's own processor is not type-checked up front."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    collector.pipeline.processors.register("text", lambda item: item, replace=True)
    item_id = await collector.collect_rating(3, processor="text")
    assert await collector.store.get(item_id) is not None  # type: ignore[attr-defined]


async def test_a_processor_that_raises_fails_processing() -> None:
    """A custom processor that raises is a processing error naming it."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))

    def broken(item: FeedbackItem) -> FeedbackItem:
        msg = "boom"
        raise RuntimeError(msg)

    collector.pipeline.processors.register("broken", broken)
    with pytest.raises(FeedbackProcessingError, match=r"processor 'broken'.*boom"):
        await collector.collect_rating(3, processor="broken")


async def test_steps_transform_in_order(collector: FeedbackCollector) -> None:
    """Steps run in order; a redaction step hides e-mail addresses before storage."""
    seen: list[str] = []

    def first(item: FeedbackItem) -> FeedbackItem:
        seen.append("first")
        return item

    collector.pipeline.add_step(first)
    collector.pipeline.add_step(redact_emails)
    collector.pipeline.add_step(lambda item: item, name="noop")
    assert collector.pipeline.steps == ["first", "redact_emails", "noop"]
    item_id = await collector.collect_text("Mail me at ann.lee+ai@example.co.uk please")
    stored = await _stored(collector, item_id)
    assert stored is not None
    assert stored.value == "Mail me at [email] please"
    assert seen == ["first"]
    # The raw payload keeps what was received, before any step changed it.
    raw = await collector.get_raw_payload(item_id)
    assert raw["text"] == "Mail me at ann.lee+ai@example.co.uk please"


async def test_rejecting_step_in_sync_mode_raises_with_reason() -> None:
    """In sync mode a rejection reaches the caller as FeedbackRejectedError."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    collector.pipeline.add_step(reject_spam)
    with pytest.raises(
        FeedbackRejectedError, match="rejected by step 'reject_spam': looks like spam"
    ):
        await collector.collect_text("best casino bonus")
    assert len(collector.store) == 0  # type: ignore[arg-type]
    assert collector.failures[0].stage == "processing"
    await collector.collect_text("fine")
    assert len(collector.store) == 1  # type: ignore[arg-type]


async def test_rejecting_step_in_async_mode_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """In async mode a rejection lands in failures with the step and the reason."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(), FeedbackConfig(async_processing=True, batch_max_delay_ms=1)
    )
    collector.pipeline.add_step(reject_spam)
    with caplog.at_level(logging.WARNING, logger="ai_feedback"):
        await collector.collect_text("best casino bonus")
        await collector.collect_text("fine")
        await collector.flush()
    [failure] = collector.failures
    assert isinstance(failure.error, FeedbackRejectedError)
    assert (failure.error.step, failure.error.reason) == ("reject_spam", "looks like spam")
    assert len(collector.store) == 1  # type: ignore[arg-type]
    assert "looks like spam" in caplog.text
    await collector.aclose()


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        (lambda item: 1 / 0, "raised ZeroDivisionError"),
        (lambda item: None, "returned NoneType, expected a FeedbackItem"),
        (lambda item: item.replace(id="other"), "changed the item's id or type"),
    ],
)
async def test_broken_step_becomes_a_processing_error_naming_it(step: Any, needle: str) -> None:
    """A step that raises or returns garbage fails with FeedbackProcessingError naming it."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    collector.pipeline.add_step(step, name="broken")
    with pytest.raises(FeedbackProcessingError) as info:
        await collector.collect_text("x")
    assert info.value.step == "broken"
    assert needle in str(info.value)
    assert len(collector.store) == 0  # type: ignore[arg-type]


async def test_step_growing_an_item_past_the_limit_is_refused() -> None:
    """Limits are checked again after the steps."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(), FeedbackConfig(async_processing=False, max_payload_chars=100)
    )
    collector.pipeline.add_step(lambda item: item.replace(metadata={"blob": "x" * 200}), name="big")
    with pytest.raises(FeedbackValidationError, match="'metadata'"):
        await collector.collect_text("x")


def test_step_management_errors() -> None:
    """Step names are unique; removing an unknown step or adding a non-callable fails."""
    pipeline = Pipeline()
    pipeline.add_step(redact_emails)
    with pytest.raises(FeedbackValidationError, match="already used"):
        pipeline.add_step(redact_emails)
    with pytest.raises(FeedbackValidationError, match="'step'"):
        pipeline.add_step("nope")  # type: ignore[arg-type]
    pipeline.remove_step("redact_emails")
    assert pipeline.steps == []
    with pytest.raises(FeedbackValidationError, match="names no step"):
        pipeline.remove_step("redact_emails")


async def test_events_come_in_order_to_sync_and_async_subscribers(
    collector: FeedbackCollector,
) -> None:
    """submitted, processed and stored events arrive in order with their payloads."""
    log: list[tuple[str, Any]] = []

    def on_submitted(event: FeedbackSubmitted) -> None:
        log.append(("submitted", event.raw_payload["text"]))

    async def on_processed(event: FeedbackProcessed) -> None:
        log.append(("processed", (event.processor, event.item.value)))

    async def on_stored(event: FeedbackStored) -> None:
        log.append(("stored", event.item.id))

    collector.events.subscribe(FeedbackSubmitted, on_submitted)
    collector.events.subscribe(FeedbackProcessed, on_processed)
    collector.events.subscribe(FeedbackStored, on_stored)
    item_id = await collector.collect_text("  hi  ")
    await collector.flush()
    assert log == [
        ("submitted", "  hi  "),
        ("processed", ("text", "hi")),
        ("stored", item_id),
    ]


async def test_failing_subscriber_is_logged_and_harms_nothing(
    collector: FeedbackCollector, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising subscriber is logged; the item is stored and later subscribers still run."""
    calls: list[str] = []

    def broken(event: FeedbackStored) -> None:
        raise RuntimeError("subscriber bug")

    collector.events.subscribe(FeedbackStored, broken)
    collector.events.subscribe(FeedbackStored, lambda event: calls.append(event.item.id))
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        item_id = await collector.collect_text("x")
        await collector.flush()
    assert calls == [item_id]
    assert await _stored(collector, item_id) is not None
    assert "subscriber" in caplog.text
    assert "subscriber bug" in caplog.text


def test_event_bus_validates_subscriptions() -> None:
    """Only the four event types and callables can be subscribed; unsubscribe works."""
    bus = EventBus()
    with pytest.raises(FeedbackValidationError, match="'event_type'"):
        bus.subscribe(dict, print)  # type: ignore[type-var]
    with pytest.raises(FeedbackValidationError, match="'subscriber'"):
        bus.subscribe(FeedbackStored, "x")  # type: ignore[arg-type]
    bus.subscribe(FeedbackFailed, print)
    assert bus.has_subscribers(FeedbackFailed)
    bus.unsubscribe(FeedbackFailed, print)
    assert not bus.has_subscribers(FeedbackFailed)
    assert "subscribers=0" in repr(bus)


async def test_raw_payloads_are_kept_exactly_as_received(collector: FeedbackCollector) -> None:
    """With store_raw_payloads the received arguments are persisted and read back by id."""
    metadata: dict[str, Any] = {"model": "gpt-4", "nested": {"k": [1, 2]}}
    await collector.submit_feedback("trace-1", 4, "  great  ", metadata)
    metadata["nested"]["k"].append(3)  # a later change by the caller is not recorded
    await collector.flush()
    [item] = await collector.store.find_by_type(FeedbackType.RATING)
    raw = await collector.get_raw_payload(item.id)
    assert raw == {
        "trace_id": "trace-1",
        "score": 4,
        "comment": "  great  ",
        "metadata": {"model": "gpt-4", "nested": {"k": [1, 2]}},
    }
    assert await collector.get_raw_payload("unknown-id") is None


async def test_raw_payloads_off_keeps_nothing_extra() -> None:
    """Without store_raw_payloads nothing extra is stored and reading one is an error."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    item_id = await collector.collect_text("x")
    assert await store.get_raw_payload(item_id) is None
    with pytest.raises(FeedbackConfigurationError, match="store_raw_payloads"):
        await collector.get_raw_payload(item_id)


def test_raw_payloads_need_a_capable_store() -> None:
    """store_raw_payloads with a store that cannot keep them fails at construction."""
    with pytest.raises(FeedbackConfigurationError, match="cannot keep raw payloads"):
        FeedbackCollector(ProtocolOnlyStore(), FeedbackConfig(store_raw_payloads=True))


async def test_submit_payload_dispatches_by_type(collector: FeedbackCollector) -> None:
    """submit_payload takes JSON objects of each type and names unknown fields."""
    ids = [
        await collector.submit_payload({"score": 5, "trace_id": "t", "comment": "ok"}),
        await collector.submit_payload({"type": "text", "text": "hello"}),
        await collector.submit_payload({"type": "correction", "original": "a", "corrected": "b"}),
        await collector.submit_payload({"type": "label", "label": "l", "input": {"x": 1}}),
    ]
    await collector.flush()
    types = [(await _stored(collector, i)).feedback_type for i in ids]  # type: ignore[union-attr]
    assert types == list(FeedbackType)
    with pytest.raises(FeedbackValidationError, match="'txt': is not a field of text"):
        await collector.submit_payload({"type": "text", "txt": "x"})
    with pytest.raises(FeedbackValidationError, match="'type'"):
        await collector.submit_payload({"type": "vote"})
    with pytest.raises(FeedbackValidationError, match="'score'"):
        await collector.submit_payload({"trace_id": "t"})
    with pytest.raises(FeedbackValidationError, match="'payload'"):
        await collector.submit_payload(["x"])  # type: ignore[arg-type]
    assert await collector.get_raw_payload(ids[1]) == {"type": "text", "text": "hello"}


@pytest.mark.parametrize("async_processing", [False, True])
async def test_a_step_that_grows_the_item_in_place_meets_the_limits(async_processing: bool) -> None:
    """Limits are checked after the steps even when a step changed the item's dicts in place."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=async_processing, max_payload_chars=100),
    )

    def grow(item: FeedbackItem) -> FeedbackItem:
        item.metadata["blob"] = "x" * 500
        return item

    collector.pipeline.add_step(grow)
    if async_processing:
        await collector.collect_text("hello")
        await collector.flush()
        [failure] = collector.failures
        assert isinstance(failure.error, FeedbackValidationError)
    else:
        with pytest.raises(FeedbackValidationError, match="'metadata'"):
            await collector.collect_text("hello")
    assert len(collector.store) == 0  # type: ignore[arg-type]
    await collector.aclose()


async def test_a_step_raising_cancelled_error_fails_its_item_not_the_writer() -> None:
    """A CancelledError from a step (a shared task cancelled) sets the item aside; flush ends."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(ack="queued"))
    calls = 0

    async def flaky(item: FeedbackItem) -> FeedbackItem:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError
        return item

    collector.pipeline.add_step(flaky)
    await collector.collect_text("first")
    await asyncio.wait_for(collector.flush(), 5)
    assert [f.stage for f in collector.failures] == ["processing"]
    await collector.collect_text("second")
    await asyncio.wait_for(collector.flush(), 5)
    assert [i.value for i in await collector.store.find_by_type(FeedbackType.TEXT)] == ["second"]
    await collector.aclose()


async def test_a_subscriber_may_submit_feedback_from_the_writer() -> None:
    """A subscriber recording derived feedback through the same collector does not freeze it."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(ack="queued"))

    async def derive(event: FeedbackStored) -> None:
        if event.item.feedback_type is FeedbackType.RATING and event.item.value <= 2:
            await collector.collect_label("low-rating", {"rating_id": event.item.id})

    collector.events.subscribe(FeedbackStored, derive)
    for n in range(3):
        await asyncio.wait_for(collector.submit_feedback(f"t{n}", 1), 5)
        await asyncio.sleep(0.05)
    await asyncio.wait_for(collector.flush(), 5)
    assert len(await collector.store.find_by_type(FeedbackType.LABEL)) == 3
    await collector.aclose()


# U+0958 is one character that NFC turns into two (a composition exclusion).
EXPANDS = "\u0958"


@pytest.mark.parametrize("async_processing", [False, True])
async def test_texts_are_limited_by_their_length_once_normalized(async_processing: bool) -> None:
    """A text NFC would lengthen past the limit is refused when submitted, not after acceptance."""
    collector = FeedbackCollector(
        MemoryFeedbackStore(),
        FeedbackConfig(async_processing=async_processing, max_text_length=100),
    )
    with pytest.raises(FeedbackTooLargeError, match=r"'text'.*is 102 once NFC-normalized"):
        await collector.collect_text(EXPANDS * 51)
    with pytest.raises(FeedbackTooLargeError, match=r"'label'.*once NFC-normalized"):
        await collector.collect_label(EXPANDS * 51, {"q": 1})
    with pytest.raises(FeedbackTooLargeError, match=r"'value'.*once NFC-normalized"):
        await collector.submit(FeedbackItem(feedback_type=FeedbackType.TEXT, value=EXPANDS * 51))
    fits = await collector.collect_text(EXPANDS * 50)  # 100 characters once normalized
    stored = await _stored(collector, fits)
    assert collector.failures == []
    assert stored is not None
    assert len(stored.value) == 100
    assert stored.value == unicodedata.normalize("NFC", EXPANDS * 50)
    await collector.aclose()


def test_ascii_and_composed_texts_are_not_renormalized_for_the_limit() -> None:
    """Texts already within a third of the limit or in ASCII skip the normalization."""
    limits = FeedbackConfig(max_text_length=30).limits
    check_normalized_length("text", "x" * 30, limits=limits)
    check_normalized_length("text", EXPANDS * 10, limits=limits)  # 20 once normalized
    with pytest.raises(FeedbackTooLargeError, match="is 32 once NFC-normalized"):
        check_normalized_length("text", EXPANDS * 16, limits=limits)


@pytest.mark.parametrize("async_processing", [False, True])
async def test_a_pipeline_given_to_the_collector_checks_the_collectors_limits(
    async_processing: bool,
) -> None:
    """A Pipeline() made without limits takes the configuration's, not the built-in ones."""
    pipeline = Pipeline()
    assert pipeline.limits == DEFAULT_LIMITS

    def grow(item: FeedbackItem) -> FeedbackItem:
        return item.replace(metadata={"blob": "x" * 500})

    pipeline.add_step(grow)
    config = FeedbackConfig(async_processing=async_processing, max_payload_chars=100)
    collector = FeedbackCollector(MemoryFeedbackStore(), config, pipeline=pipeline)
    assert pipeline.limits == config.limits
    if async_processing:
        await collector.collect_text("hello")
        await collector.flush()
        [failure] = collector.failures
        assert isinstance(failure.error, FeedbackTooLargeError)
        assert "'metadata'" in str(failure.error)
    else:
        with pytest.raises(FeedbackTooLargeError, match="'metadata'"):
            await collector.collect_text("hello")
    assert len(collector.store) == 0  # type: ignore[arg-type]
    await collector.aclose()


async def test_a_pipeline_made_with_limits_keeps_them() -> None:
    """Limits given to Pipeline() win over the collector's configuration."""
    own = FeedbackConfig(max_payload_chars=1_000).limits
    pipeline = Pipeline(limits=own)
    pipeline.add_step(lambda item: item.replace(metadata={"blob": "x" * 500}))
    config = FeedbackConfig(async_processing=False, max_payload_chars=100)
    collector = FeedbackCollector(MemoryFeedbackStore(), config, pipeline=pipeline)
    assert pipeline.limits is own
    stored = await collector.collect_text("hello")
    assert (await _stored(collector, stored)) is not None
    await collector.aclose()


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
@pytest.mark.parametrize("async_processing", [False, True])
async def test_raw_payloads_hold_metadata_as_deep_as_the_limit(
    store_kind: str, async_processing: bool, tmp_path: Any
) -> None:
    """Raw payloads hold metadata nested as deep as the limit (they wrap it one level down).

    One level more is refused naming the metadata, not the raw payload.
    """
    store: Any = (
        MemoryFeedbackStore()
        if store_kind == "memory"
        else await SQLiteFeedbackStore.open(f"sqlite:///{tmp_path / 'f.db'}")
    )
    config = FeedbackConfig(async_processing=async_processing, store_raw_payloads=True)
    collector = FeedbackCollector(store, config)
    deep = _nested(MAX_DEPTH)
    item_id = await collector.collect_rating(4, metadata=deep)
    await collector.flush()
    assert collector.failures == []
    raw = await collector.get_raw_payload(item_id)
    assert raw["metadata"] == deep
    with pytest.raises(FeedbackValidationError) as info:
        await collector.collect_rating(4, metadata=_nested(MAX_DEPTH + 1))
    assert info.value.field.startswith("metadata")
    await collector.aclose()
    await store.aclose()
