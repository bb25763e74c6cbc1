"""Tests of async processing: batching, back-pressure, flush, retries, failure reports."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from ai_feedback import (
    Application,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackError,
    FeedbackFailed,
    FeedbackModule,
    FeedbackProcessed,
    FeedbackStored,
    FeedbackStoreProtocol,
    FeedbackType,
    FeedbackValidationError,
    Limits,
    MemoryFeedbackStore,
    RejectFeedback,
)
from tests.fakes import FlakyStore, ProtocolOnlyStore, SlowStore, WrappedStore


def _config(**overrides: Any) -> FeedbackConfig:
    settings: dict[str, Any] = {
        "async_processing": True,
        "batch_size": 50,
        "batch_max_delay_ms": 5,
        "retry_backoff_ms": 1,
        "retry_backoff_max_ms": 5,
    }
    settings.update(overrides)
    return FeedbackConfig(**settings)


async def _submit(collector: FeedbackCollector, n: int, *, session: str = "s") -> None:
    for i in range(n):
        await collector.submit_feedback(f"t{i}", i % 5 + 1, metadata={"session_id": session})


async def test_validation_errors_reach_the_caller_and_nothing_is_queued() -> None:
    """With async processing, bad input still raises in the caller's task."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config())
    with pytest.raises(FeedbackValidationError, match="'score'"):
        await collector.submit_feedback("t", "five")  # type: ignore[arg-type]
    with pytest.raises(FeedbackValidationError, match="'processor'"):
        await collector.collect_text("x", processor="nope")
    assert collector.counters["accepted"] == 0
    await collector.aclose()
    assert len(store) == 0


async def test_items_are_written_in_batches_and_flush_waits() -> None:
    """Queued items are stored in batches; flush() returns once all are stored."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config(batch_size=100, batch_max_delay_ms=1000))
    await _submit(collector, 250)
    await collector.flush()
    assert len(store) == 250
    assert store.save_calls == 0
    assert sum(store.batches) == 250
    assert max(store.batches) <= 100
    assert len(store.batches) <= 4  # batches fill up instead of writing item by item
    counters = collector.counters
    assert (counters["accepted"], counters["stored"], counters["pending"]) == (250, 250, 0)
    await collector.aclose()


async def test_partial_batch_is_written_after_the_delay() -> None:
    """A lone item is written once batch_max_delay_ms passes, without a flush."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config(batch_max_delay_ms=20))
    await collector.collect_text("alone")
    for _ in range(200):
        if len(store):
            break
        await asyncio.sleep(0.01)
    assert len(store) == 1
    await collector.aclose()


async def test_reads_see_earlier_writes() -> None:
    """Statistics and store queries include everything submitted before them."""
    async with Application.boot(
        modules=[FeedbackModule.configure(_config(batch_max_delay_ms=10_000))]
    ) as app:
        collector = await app.container.resolve(FeedbackCollector)
        store = await app.container.resolve(FeedbackStoreProtocol)
        await _submit(collector, 7)
        assert (await collector.get_feedback_stats())["total_count"] == 7
        await _submit(collector, 3, session="other")
        assert len(await store.find_by_session("other")) == 3
        assert (await store.aggregate()).total_count == 10
        await collector.collect_text("x")
        assert len(await store.find_by_type(FeedbackType.TEXT)) == 1


@pytest.mark.parametrize(
    "bound", [{"ack": "queued", "queue_max_size": 20}, {"ack": "durable", "spool_max_items": 20}]
)
async def test_burst_larger_than_the_queue_waits_and_loses_nothing(bound: dict[str, Any]) -> None:
    """Submitters wait while the queue or spool is full; every item of the burst is stored."""
    store = SlowStore(delay=0.01)
    collector = FeedbackCollector(store, _config(batch_size=10, **bound))
    max_pending = 0

    async def watch() -> None:
        nonlocal max_pending
        while True:
            max_pending = max(max_pending, collector.counters["pending"])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(_submit(collector, 50, session=f"s{i}") for i in range(6)))
    watcher.cancel()
    await collector.flush()
    assert len(store) == 300
    assert max_pending <= 20  # waiting and in flight together
    assert collector.failures == []
    await collector.aclose()


async def test_store_failing_n_times_is_retried_without_loss_or_duplicates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Err results and exceptions are retried with backoff; each item is stored once."""
    for raising in (False, True):
        store = FlakyStore(3, raising=raising, partial=True)
        collector = FeedbackCollector(store, _config(max_attempts=5))
        with caplog.at_level(logging.WARNING, logger="ai_feedback"):
            await _submit(collector, 120)
            await collector.flush()
        assert len(store) == 120
        ids = [i.id for i in await store.find_by_session("s")]
        assert len(ids) == len(set(ids)) == 120
        assert collector.counters["retries"] == 3
        assert collector.failures == []
        assert "retrying" in caplog.text
        await collector.aclose()


async def test_store_failing_beyond_max_attempts_reports_every_item(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After max_attempts the items are in failures, logged and published; none vanish."""
    store = FlakyStore(100)
    collector = FeedbackCollector(store, _config(max_attempts=3, batch_size=1000))
    published: list[FeedbackFailed] = []
    collector.events.subscribe(FeedbackFailed, published.append)
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await _submit(collector, 10)
        await collector.flush()
    assert len(store) == 0
    failures = collector.failures
    assert len(failures) == len(published) == 10
    assert {f.stage for f in failures} == {"storage"}
    assert {f.attempts for f in failures} == {3}
    assert "database is down" in str(failures[0].error)
    assert collector.counters["failed"] == 10
    given_up = re.findall(r"Giving up on (\d+) feedback item\(s\) after 3 attempt", caplog.text)
    assert sum(int(n) for n in given_up) == 10
    await collector.aclose()


async def test_validation_error_from_the_store_is_not_retried() -> None:
    """A store refusing an item as invalid fails it at once instead of retrying."""
    store = WrappedStore()
    store.inner = MemoryFeedbackStore(limits=Limits(max_text_length=5))
    collector = FeedbackCollector(store, _config(max_attempts=5))
    await collector.collect_text("far too long")
    await collector.flush()
    [failure] = collector.failures
    assert failure.attempts == 1
    assert isinstance(failure.error, FeedbackValidationError)
    await collector.aclose()


class _GatedStore(WrappedStore):
    """Holds every batch write until ``gate`` is set: a store as slow as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def before_write(self, batch: list[Any]) -> None:
        self.waiting.set()
        await self.gate.wait()


async def test_slow_store_does_not_block_submitters() -> None:
    """Submitting is not held up by a store that has not finished writing."""
    store = _GatedStore()
    collector = FeedbackCollector(store, _config(queue_max_size=1000))
    await collector.collect_rating(1)
    await asyncio.wait_for(store.waiting.wait(), 5)  # the writer is stuck in the store
    await _submit(collector, 100)  # returns although nothing could be written yet
    assert len(store) == 0
    assert collector.counters["pending"] == 101
    store.gate.set()
    await collector.flush()
    assert len(store) == 101
    await collector.aclose()


async def test_shutdown_drains_the_queue() -> None:
    """Leaving the application stores everything queued; later submissions are refused."""
    store_holder: dict[str, FeedbackCollector] = {}
    async with Application.boot(
        modules=[FeedbackModule.configure(_config(batch_max_delay_ms=10_000))]
    ) as app:
        collector = await app.container.resolve(FeedbackCollector)
        store_holder["c"] = collector
        await _submit(collector, 42)
        assert collector.counters["pending"] > 0
    assert collector.counters["pending"] == 0
    assert len(collector.store) == 42  # type: ignore[arg-type]
    with pytest.raises(FeedbackError, match="closed"):
        await collector.collect_text("late")


async def test_a_crashing_store_never_kills_the_worker() -> None:
    """Even a store raising on every write leaves the writer running for later items."""
    store = FlakyStore(1, raising=True)
    collector = FeedbackCollector(store, _config(max_attempts=1))
    await _submit(collector, 3)
    await collector.flush()
    assert len(collector.failures) == 3
    await _submit(collector, 2, session="later")
    await collector.flush()
    assert len(await store.find_by_session("later")) == 2
    await collector.aclose()


async def test_store_without_save_many_gets_one_save_per_item() -> None:
    """A protocol-only store is written item by item, still in the background."""
    store = ProtocolOnlyStore()
    collector = FeedbackCollector(store, _config())
    await _submit(collector, 5)
    await collector.flush()
    assert len(store.inner) == 5
    await collector.aclose()


class _CancelOnce(WrappedStore):
    """Raises CancelledError from its first batch write, as a dying driver might."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    async def before_write(self, batch: list[Any]) -> None:
        if not self.raised:
            self.raised = True
            raise asyncio.CancelledError


async def test_store_raising_cancelled_error_is_retried() -> None:
    """A CancelledError from the store (not a cancel of the writer) is retried like an Err."""
    store = _CancelOnce()
    collector = FeedbackCollector(store, _config())
    await _submit(collector, 3)
    await asyncio.wait_for(collector.flush(), 5)
    assert len(store) == 3
    await collector.aclose()


async def test_base_exception_in_a_subscriber_harms_nothing() -> None:
    """A subscriber raising a BaseException (e.g. RejectFeedback) is logged; items still land."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config())

    def bad(event: FeedbackProcessed) -> None:
        raise RejectFeedback("not here")

    collector.events.subscribe(FeedbackProcessed, bad)
    await _submit(collector, 4)
    await asyncio.wait_for(collector.flush(), 5)
    assert len(store) == 4
    await collector.aclose()


async def test_reading_from_a_subscriber_does_not_deadlock() -> None:
    """A subscriber that reads statistics (which flush) sees what is stored, without a hang."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config())
    seen: list[int] = []

    async def count(event: FeedbackStored) -> None:
        seen.append((await collector.get_feedback_stats())["total_count"])

    collector.events.subscribe(FeedbackStored, count)
    await _submit(collector, 2)
    await asyncio.wait_for(collector.flush(), 5)
    assert seen
    assert seen[-1] == 2
    await collector.aclose()


@pytest.mark.parametrize(
    "bound", [{"ack": "queued", "queue_max_size": 1}, {"ack": "durable", "spool_max_items": 1}]
)
async def test_close_with_submitters_waiting_stores_everything(bound: dict[str, Any]) -> None:
    """Submitters blocked on a full queue when the app closes still get their items stored."""
    store = SlowStore(delay=0.02)
    collector = FeedbackCollector(store, _config(batch_size=1, batch_max_delay_ms=0, **bound))
    tasks = [asyncio.create_task(collector.collect_rating(i + 1)) for i in range(6)]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(collector.aclose(), 5)
    ids = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert len(store) == 6
    assert {i.id for i in await store.find_by_type(FeedbackType.RATING)} == set(ids)
    assert collector.counters["pending"] == 0


async def test_one_oversized_item_does_not_sink_its_batch() -> None:
    """A step that pushes one item over the limit fails that item only."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config(max_payload_chars=200, batch_max_delay_ms=50))

    def bloat(item: Any) -> Any:
        if item.value == 5:
            return item.replace(metadata={"blob": "x" * 500})
        return item

    collector.pipeline.add_step(bloat)
    for score in (1, 5, 3, 4):
        await collector.collect_rating(score)
    await collector.flush()
    assert sorted(i.value for i in await store.find_by_type(FeedbackType.RATING)) == [1, 3, 4]
    [failure] = collector.failures
    assert failure.item.value == 5
    assert failure.stage == "processing"
    await collector.aclose()


async def test_item_the_store_refuses_as_invalid_is_isolated() -> None:
    """When the store refuses a batch as invalid, the items are retried one by one."""
    store = WrappedStore()
    store.inner = MemoryFeedbackStore(limits=Limits(max_text_length=5))
    collector = FeedbackCollector(store, _config(batch_max_delay_ms=50))
    await collector.collect_text("ok")
    await collector.collect_text("far too long")
    await collector.collect_text("fine")
    await collector.flush()
    assert sorted(i.value for i in await store.find_by_type(FeedbackType.TEXT)) == ["fine", "ok"]
    assert [f.item.value for f in collector.failures] == ["far too long"]
    await collector.aclose()
