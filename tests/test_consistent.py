"""Tests of ReadYourWritesStore: reads wait for queued writes; writes pass straight through."""

from __future__ import annotations

import pytest

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackStorageError,
    FeedbackType,
    MemoryFeedbackStore,
    Ok,
    ReadYourWritesStore,
)
from tests.fakes import ProtocolOnlyStore


async def test_every_read_sees_items_still_queued() -> None:
    """get, find_*, aggregate, stats and raw payloads include items accepted before them."""
    inner = MemoryFeedbackStore()
    config = FeedbackConfig(
        async_processing=True, batch_max_delay_ms=60_000, batch_size=10_000, store_raw_payloads=True
    )
    collector = FeedbackCollector(inner, config)
    view = ReadYourWritesStore(inner, collector.flush)
    ctx = {"session_id": "s", "model": "m"}

    item_id = await collector.collect_rating(4, context=ctx)
    assert (await view.get(item_id)) is not None
    await collector.collect_text("hi", context=ctx)
    assert len(await view.find_by_session("s")) == 2
    await collector.collect_text("again", context=ctx)
    assert len(await view.find_by_type(FeedbackType.TEXT)) == 2
    await collector.collect_rating(2, context=ctx)
    assert (await view.aggregate(window_hours=24)).total_count == 4
    await collector.collect_rating(3, context=ctx)
    assert (await view.aggregate(window_hours=24, model="m")).total_count == 5
    await collector.collect_rating(5, context=ctx)
    assert (await view.stats(model="m")).rating_count == 4
    last = await collector.collect_label("l", None, context=ctx)
    assert (await view.get_raw_payload(last))["label"] == "l"
    assert "ReadYourWritesStore over" in repr(view)
    assert view.inner is inner
    await collector.aclose()


async def test_writes_go_straight_to_the_inner_store() -> None:
    """Save and save_many bypass the pipeline and land at once."""
    inner = MemoryFeedbackStore()

    async def no_flush() -> None:
        return None

    view = ReadYourWritesStore(inner, no_flush)
    one = FeedbackItem(feedback_type=FeedbackType.TEXT, value="a")
    two = FeedbackItem(feedback_type=FeedbackType.TEXT, value="b")
    assert await view.save(one) == Ok(one.id)
    assert await view.save_many([two], raw_payloads={two.id: {"raw": True}}) == Ok([two.id])
    assert await view.save_many([one]) == Ok([one.id])
    assert len(inner) == 2
    assert await inner.get_raw_payload(two.id) == {"raw": True}


async def test_methods_the_inner_store_lacks_are_storage_errors() -> None:
    """A protocol-only inner store answers the protocol; extras raise FeedbackStorageError."""

    async def no_flush() -> None:
        return None

    view = ReadYourWritesStore(ProtocolOnlyStore(), no_flush)
    assert (await view.aggregate()).total_count == 0
    with pytest.raises(FeedbackStorageError, match="has no stats"):
        await view.stats()
    with pytest.raises(FeedbackStorageError, match="has no get"):
        await view.get("x")


async def test_series_sees_items_still_queued() -> None:
    """A time series waits for queued writes, like stats, and passes the owner filter on."""
    inner = MemoryFeedbackStore()
    config = FeedbackConfig(async_processing=True, batch_max_delay_ms=60_000, batch_size=10_000)
    collector = FeedbackCollector(inner, config)
    view = ReadYourWritesStore(inner, collector.flush)
    await collector.collect_rating(4, context={"owner_id": "a", "model": "m"})
    await collector.collect_text("hi", context={"owner_id": "b"})
    [point] = await view.series(window_hours=1, owner_id="a")
    assert (point.count, point.rating_count, point.average_rating) == (1, 1, 4.0)
    assert sum(p.count for p in await view.series(window_hours=1, bucket="day")) == 2
    await collector.aclose()
