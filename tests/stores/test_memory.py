"""Tests specific to the in-memory store: bounds, eviction, batch writes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from ai_feedback import FeedbackItem, FeedbackType, FeedbackValidationError, MemoryFeedbackStore, Ok


def _rating(ago_s: float, **context: str) -> FeedbackItem:
    return FeedbackItem(
        feedback_type=FeedbackType.RATING,
        value=1,
        context=context,
        created_at=datetime.now(UTC) - timedelta(seconds=ago_s),
    )


async def test_oldest_items_are_evicted_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past max_items the oldest item goes, evicted_count grows and a warning is logged."""
    store = MemoryFeedbackStore(max_items=3)
    items = [_rating(100 - i, session_id="s", model="m") for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="ai_feedback"):
        for item in items:
            await store.save(item)
    assert len(store) == 3
    assert store.evicted_count == 2
    assert "evicted 1 oldest item" in caplog.text
    assert [i.id for i in await store.find_by_session("s")] == [i.id for i in items[:1:-1]]
    assert (await store.aggregate()).total_count == 3
    assert (await store.stats(model="m")).summary.total_count == 3
    assert await store.get(items[0].id) is None
    assert "items=3 max_items=3" in repr(store)


async def test_eviction_takes_the_oldest_timestamp_not_the_first_saved() -> None:
    """An old item saved late is the first to be evicted."""
    store = MemoryFeedbackStore(max_items=2)
    newer, late_but_old, newest = _rating(10), _rating(1000), _rating(0)
    for item in (newer, late_but_old, newest):
        await store.save(item)
    assert await store.get(late_but_old.id) is None
    assert await store.get(newer.id) == newer


async def test_long_eviction_runs_keep_indexes_consistent() -> None:
    """Thousands of evictions (which compact the indexes) keep queries right."""
    store = MemoryFeedbackStore(max_items=500)
    items = [_rating(5000 - i, session_id=f"s{i % 7}", model=f"m{i % 3}") for i in range(5000)]
    await store.save_many(items)
    assert len(store) == 500
    assert store.evicted_count == 4500
    kept = items[-500:]
    assert [i.id for i in await store.find_by_type(FeedbackType.RATING, limit=500)] == [
        i.id for i in kept[::-1]
    ]
    assert [i.id for i in await store.find_by_session("s3")] == [
        i.id for i in kept[::-1] if i.context["session_id"] == "s3"
    ]
    summary = await store.aggregate(window_hours=10)
    assert summary.total_count == 500
    assert (await store.stats(model="m1")).summary.total_count == sum(
        1 for i in kept if i.context["model"] == "m1"
    )


async def test_save_many_is_all_or_nothing_on_bad_input() -> None:
    """save_many validates every item before storing any."""
    store = MemoryFeedbackStore()
    good = _rating(0)
    with pytest.raises(FeedbackValidationError, match="'feedback'"):
        await store.save_many([good, "not an item"])  # type: ignore[list-item]
    assert len(store) == 0
    assert await store.save_many([good, good]) == Ok([good.id, good.id])
    assert len(store) == 1


async def test_get_returns_copies() -> None:
    """get() returns an equal copy, not the stored object, and validates the id."""
    store = MemoryFeedbackStore()
    item = _rating(0, session_id="s")
    await store.save(item)
    got = await store.get(item.id)
    assert got == item
    assert got is not item
    with pytest.raises(FeedbackValidationError, match="'item_id'"):
        await store.get("")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_max_items_must_be_a_positive_integer(bad: object) -> None:
    """max_items rejects anything but a positive int."""
    with pytest.raises(FeedbackValidationError, match="'max_items'"):
        MemoryFeedbackStore(max_items=bad)  # type: ignore[arg-type]
