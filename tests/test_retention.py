"""Retention: expired items are deleted in bounded batches that let ingest run between them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import (
    Deleted,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStorageError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.retention import Retention
from ai_feedback.stores.sqlite import SQLiteFeedbackStore

NOW = datetime.now(UTC)


def _items(n: int, age: timedelta) -> list[FeedbackItem]:
    return [FeedbackItem(FeedbackType.RATING, 3, created_at=NOW - age) for _ in range(n)]


class _Recording:
    """Wraps a store's delete, recording each batch's limit in ``events``."""

    def __init__(self, store: Any, events: list[str]) -> None:
        self.store = store
        self.events = events

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        removed: Deleted = await self.store.delete(where, limit=limit)
        self.events.append(f"delete {removed.items}")
        return removed


async def test_expired_items_go_in_batches_and_fresh_ones_stay(tmp_path: Path) -> None:
    """2,500 items past the cutoff are removed 1,000 at a time; newer items are kept."""
    async with await SQLiteFeedbackStore.open(tmp_path / "f.db") as store:
        old = _items(2500, timedelta(days=31))
        fresh = _items(10, timedelta(days=29))
        await store.save_many(old + fresh)
        events: list[str] = []
        retention = Retention(_Recording(store, events), days=30, batch_size=1000)
        assert await retention.run_once(NOW) == 2500
        assert events == ["delete 1000", "delete 1000", "delete 500"]
        assert {i.id async for i in store.scan()} == {i.id for i in fresh}
        assert await retention.run_once(NOW) == 0
        assert (retention.deleted, retention.passes) == (2500, 2)


async def test_ingest_runs_between_batches() -> None:
    """Submissions made while a large backlog is deleted complete before the backlog is gone."""
    store = MemoryFeedbackStore(max_items=100_000)
    await store.save_many(_items(20_000, timedelta(days=400)))
    events: list[str] = []
    retention = Retention(_Recording(store, events), days=365, batch_size=500)

    async def ingest() -> None:
        for _ in range(20):
            await store.save(FeedbackItem(FeedbackType.RATING, 5))
            events.append("save")
            await asyncio.sleep(0)

    removed, _ = await asyncio.gather(retention.run_once(), ingest())
    assert removed == 20_000
    deletes = [i for i, e in enumerate(events) if e.startswith("delete")]
    saves = [i for i, e in enumerate(events) if e == "save"]
    assert len(deletes) == 41  # 40 full batches and the empty one that ends the pass
    assert saves[-1] < deletes[-1]  # ingest finished while deletion was still going
    assert len(await store.find_by_type(FeedbackType.RATING, limit=1000)) == 20


async def test_the_collector_runs_retention_on_its_schedule(tmp_path: Path) -> None:
    """With retention_days set, starting the collector deletes expired items right away."""
    async with await SQLiteFeedbackStore.open(tmp_path / "f.db") as store:
        await store.save_many(_items(3, timedelta(days=10)) + _items(2, timedelta(days=1)))
        config = FeedbackConfig(async_processing=False, retention_days=7, retention_batch_size=2)
        collector = FeedbackCollector(store, config)
        await collector.start()
        try:
            assert collector.retention is not None
            for _ in range(200):
                if collector.retention.passes:
                    break
                await asyncio.sleep(0.01)
            assert collector.retention.deleted == 3
            assert len([i async for i in store.scan()]) == 2
        finally:
            await collector.aclose()


async def test_a_failing_pass_is_retried_on_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store error during a pass is logged; the next pass deletes the items."""
    store = MemoryFeedbackStore()
    await store.save_many(_items(3, timedelta(days=10)))
    failures = [FeedbackStorageError("database is down")]

    class Flaky:
        async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
            if failures:
                raise failures.pop()
            return await store.delete(where, limit=limit)

    retention = Retention(Flaky(), days=7, interval=0.01)
    retention.start()
    try:
        for _ in range(300):
            if retention.deleted == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await retention.aclose()
    assert retention.deleted == 3
    assert "Retention pass failed: database is down" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 1, "interval": -1}, "interval"),
        ({"days": 1, "batch_size": True}, "batch_size"),
        ({"days": 1, "batch_size": 0.5}, "batch_size"),
        ({"days": float("nan")}, "days"),
    ],
)
def test_bad_retention_settings_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Non-positive numbers are refused with the field's name."""
    with pytest.raises(FeedbackValidationError) as info:
        Retention(MemoryFeedbackStore(), **kwargs)
    assert info.value.field == field


def test_retention_needs_a_store_that_deletes_and_a_positive_age() -> None:
    """retention_days must be positive, and the store must be able to delete."""
    with pytest.raises(FeedbackConfigurationError, match="retention_days"):
        FeedbackConfig(retention_days=0)
    with pytest.raises(FeedbackValidationError) as info:
        Retention(object(), days=1)
    assert info.value.field == "store"
