"""Tests of async processing: batching, back-pressure, flush, retries, failure reports."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sqlite3
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from ai_feedback import (
    Application,
    Err,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConflictError,
    FeedbackError,
    FeedbackFailed,
    FeedbackItem,
    FeedbackModule,
    FeedbackOverloadedError,
    FeedbackProcessed,
    FeedbackStorageError,
    FeedbackStored,
    FeedbackStoreProtocol,
    FeedbackSubmitted,
    FeedbackType,
    FeedbackValidationError,
    Limits,
    MemoryFeedbackStore,
    RejectFeedback,
)
from ai_feedback._models import Entry
from ai_feedback.asgi import FeedbackEndpoint
from ai_feedback.spool import default_spool_path
from ai_feedback.spool.sqlite import SQLiteSpool
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
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
@pytest.mark.no_cover  # traced, the watcher's tight loop starves the spool's thread (50x slower)
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


@pytest.mark.parametrize("ack", ["queued", "durable"])
async def test_a_tight_loop_never_starves_the_writer(ack: str) -> None:
    """Submitting in a loop that never awaits anything else still lets the writer keep up."""
    store = WrappedStore()
    collector = FeedbackCollector(
        store, _config(ack=ack, batch_size=50, batch_max_delay_ms=10_000, queue_max_size=100_000)
    )
    lag = 0
    for i in range(3000):
        await collector.collect_rating(i % 5 + 1)
        lag = max(lag, collector.counters["accepted"] - len(store))
    assert lag <= 3 * 50  # bounded by the batch, not by the number of submissions
    await collector.aclose()


@pytest.mark.parametrize("ack", ["queued", "durable"])
async def test_a_partial_batch_is_stored_during_a_busy_loop(ack: str) -> None:
    """The batch delay bounds the time to stored even while submitters are busy."""
    store = WrappedStore()
    collector = FeedbackCollector(
        store, _config(ack=ack, batch_size=100_000, batch_max_delay_ms=5, queue_max_size=100_000)
    )
    for i in range(5000):
        await collector.collect_rating(i % 5 + 1)
    assert len(store) > 0  # written before the loop ended, although no batch filled up
    await collector.aclose()
    assert len(store) == 5000


async def test_writes_are_retried_until_the_store_accepts_them() -> None:
    """Without max_attempts, a store that keeps failing is retried until it recovers."""
    store = FlakyStore(40)
    collector = FeedbackCollector(store, _config(retry_backoff_ms=0.1, retry_backoff_max_ms=1))
    await _submit(collector, 10)
    await asyncio.wait_for(collector.flush(), 10)
    assert len(store) == 10
    assert collector.failures == []
    assert collector.counters["retries"] >= 40
    await collector.aclose()


async def test_status_shows_an_outage_and_the_recovery() -> None:
    """status() tells whether the store answers, since when it fails, and what waits."""
    store = FlakyStore(10**9)
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1, retry_backoff_max_ms=5))
    assert (await collector.status()).spool is None  # not started yet
    await _submit(collector, 7)
    for _ in range(500):
        if collector.counters["retries"] >= 3:
            break
        await asyncio.sleep(0.01)
    down = await collector.status()
    assert down.mode == "durable"
    assert down.store_reachable is False
    assert down.failing_for_seconds is not None
    assert "database is down" in (down.last_error or "")
    assert down.spool is not None
    assert down.spool.depth == 7
    assert down.spool.oldest_age_seconds is not None
    assert down.to_dict()["spool"]["depth"] == 7
    store.remaining = 0
    await asyncio.wait_for(collector.flush(), 10)
    up = await collector.status()
    assert (up.store_reachable, up.failing_for_seconds, up.stored) == (True, None, 7)
    assert up.spool is not None
    assert up.spool.depth == 0
    await collector.aclose()


async def test_what_a_shutdown_could_not_store_is_stored_at_the_next_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shutdown that runs out of time leaves the items in the spool; the next run stores them."""
    failing = FlakyStore(10**9)
    first = FeedbackCollector(failing, _config(retry_backoff_ms=1, retry_backoff_max_ms=5))
    await _submit(first, 10)
    with caplog.at_level(logging.WARNING, logger="ai_feedback"):
        await first.aclose(deadline=0.2)
    assert "stay in the spool" in caplog.text
    assert len(failing) == 0
    healthy = FlakyStore(0)  # the same kind of store, so the same spool
    second = FeedbackCollector(healthy, _config())
    await second.start()
    await asyncio.wait_for(second.flush(), 10)
    assert len(healthy) == 10
    assert second.counters["stored"] == 10
    await second.aclose()


async def test_a_queued_shutdown_that_runs_out_of_time_reports_the_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ack 'queued' the items a late shutdown leaves are lost, and that is logged."""
    collector = FeedbackCollector(FlakyStore(10**9), _config(ack="queued", retry_backoff_ms=1))
    await _submit(collector, 4)
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await collector.aclose(deadline=0.1)
    assert "4 accepted item(s) not stored" in caplog.text
    assert "they are lost" in caplog.text


@pytest.mark.parametrize("ack", ["queued", "durable"])
async def test_a_different_item_under_a_used_id_is_set_aside(ack: str) -> None:
    """The writer sets a conflicting item aside (failures, dead letters); the rest is stored."""
    store = WrappedStore()
    collector = FeedbackCollector(store, _config(ack=ack))
    original = FeedbackItem(feedback_type=FeedbackType.RATING, value=5)
    await collector.submit(original)
    await collector.flush()
    await collector.submit(original)  # the same item again: fine
    await collector.submit(original.replace(value=1))  # another item under its id
    others = [await collector.collect_rating(3) for _ in range(3)]
    await collector.flush()
    [failure] = collector.failures
    assert isinstance(failure.error, FeedbackConflictError)
    assert failure.item.value == 1
    assert (await store.get(original.id)) == original
    assert all([await store.get(i) for i in others])
    status = await collector.status()
    assert status.spool is not None
    assert status.spool.dead_letters == (1 if ack == "durable" else 0)
    await collector.aclose()


async def test_a_conflict_in_sync_mode_is_raised() -> None:
    """Without async processing a conflicting item raises FeedbackConflictError to the caller."""
    collector = FeedbackCollector(MemoryFeedbackStore(), _config(async_processing=False))
    item = FeedbackItem(feedback_type=FeedbackType.TEXT, value="first")
    await collector.submit(item)
    await collector.submit(item)
    with pytest.raises(FeedbackConflictError) as info:
        await collector.submit(item.replace(value="second"))
    assert info.value.ids == (item.id,)


async def test_failures_are_kept_compactly() -> None:
    """Kept failures hold no tracebacks (which would pin whole batches in memory)."""
    collector = FeedbackCollector(WrappedStore(), _config(ack="queued", batch_size=500))

    def refuse(item: Any) -> Any:
        raise RejectFeedback("no")

    collector.pipeline.add_step(refuse)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await _submit(collector, 2000)
    await collector.flush()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(collector.failures) == 2000
    assert all(f.error.__traceback__ is None for f in collector.failures)
    assert kept / 2000 < 4096  # bytes per failure, the item included
    await collector.aclose()


async def test_a_full_spool_answers_429_with_retry_after() -> None:
    """When the spool stays full the endpoint answers 429 with Retry-After; nothing is lost."""
    store = _GatedStore()
    collector = FeedbackCollector(
        store, _config(spool_max_items=2, backpressure_wait_ms=50, batch_size=1)
    )
    transport = httpx.ASGITransport(app=FeedbackEndpoint(collector))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        accepted = [await http.post("/", json={"score": s}) for s in (1, 2)]
        refused = await http.post("/", json={"score": 3})
    assert [r.status_code for r in accepted] == [202, 202]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "overloaded"
    store.gate.set()
    await collector.flush()
    assert len(store) == 2
    await collector.aclose()


class _ConflictingStore(WrappedStore):
    """Refuses every write as a conflict on the first item's id."""

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        return Err(FeedbackConflictError([batch[0].id]))


async def test_a_conflict_answers_409_in_sync_mode() -> None:
    """The endpoint maps a conflict to 409 naming the ids."""
    collector = FeedbackCollector(_ConflictingStore(), _config(async_processing=False))
    transport = httpx.ASGITransport(app=FeedbackEndpoint(collector))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", json={"score": 4})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    [item_id] = response.json()["ids"]
    assert item_id in response.json()["message"]


async def test_reads_during_an_outage_do_not_wait_for_its_end() -> None:
    """Statistics during a store outage answer (from what is stored) instead of hanging."""
    store = FlakyStore(10**9)
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1, retry_backoff_max_ms=5))
    await _submit(collector, 3)
    stats = await asyncio.wait_for(collector.get_feedback_stats(), 5)
    assert stats["total_count"] == 0  # nothing could be stored yet
    flushing = asyncio.create_task(collector.flush())  # an explicit flush waits it out
    await asyncio.sleep(0.05)
    assert not flushing.done()
    store.remaining = 0
    await asyncio.wait_for(flushing, 5)
    assert (await collector.get_feedback_stats())["total_count"] == 3
    await collector.aclose()


class _Recovering(MemoryFeedbackStore):
    """Down (raising) until ``down`` is cleared, then slow: each write takes 0.1 s."""

    down = True

    async def save_many(self, items: Any, *, raw_payloads: Any = None) -> Any:
        if self.down:
            msg = "database is down"
            raise OSError(msg)
        await asyncio.sleep(0.1)
        return await super().save_many(items, raw_payloads=raw_payloads)


async def test_reads_and_deletions_wait_again_once_a_batch_was_given_up() -> None:
    """A batch given up (max_attempts) does not make later reads or deletions skip waiting."""
    store = _Recovering()
    collector = FeedbackCollector(store, _config(ack="queued", max_attempts=1))
    await collector.collect_rating(1)
    await collector.flush()
    assert len(collector.failures) == 1  # given up during the outage
    store.down = False
    await collector.collect_rating(5, context={"session_id": "user-42"})
    assert (await collector.get_feedback_stats())["total_count"] == 1  # read your writes
    await collector.collect_rating(4, context={"session_id": "user-42"})
    receipt = await collector.delete(session_id="user-42")
    assert receipt.items == 2
    await collector.flush()
    assert await store.find_by_session("user-42") == []
    await collector.aclose()


async def test_a_deletion_while_the_store_fails_refuses_rather_than_run_early() -> None:
    """Items accepted before a deletion and not yet written make it fail, not miss them."""
    store = _Recovering()
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1, retry_backoff_max_ms=5))
    await collector.collect_rating(5, context={"session_id": "user-7"})
    with pytest.raises(FeedbackStorageError, match="delete again once the store is back"):
        await asyncio.wait_for(collector.delete(session_id="user-7"), 5)
    store.down = False
    await collector.flush()
    assert (await collector.delete(session_id="user-7")).items == 1
    await collector.aclose()


async def _refusing_texts(store: WrappedStore) -> tuple[FeedbackCollector, SQLiteSpool]:
    """A started collector whose step rejects every text, and its SQLite spool."""
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1))

    def refuse_texts(item: FeedbackItem) -> FeedbackItem:
        if item.feedback_type is FeedbackType.TEXT:
            raise RejectFeedback("spam")
        return item

    collector.pipeline.add_step(refuse_texts)
    await collector.start()
    assert collector._writer is not None
    spool = collector._writer.spool
    assert isinstance(spool, SQLiteSpool)
    return collector, spool


async def test_a_dead_letter_that_cannot_be_kept_does_not_lose_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the spool cannot keep a dead letter, the batch is handled again; nothing is lost."""
    store = WrappedStore()
    collector, spool = await _refusing_texts(store)
    keep = spool._dead
    broken = [1]

    def failing(*args: Any, **kwargs: Any) -> None:
        if broken:
            broken.pop()
            msg = "database or disk is full"
            raise sqlite3.OperationalError(msg)
        keep(*args, **kwargs)

    spool._dead = failing  # type: ignore[method-assign]
    ids = [await collector.collect_rating(i + 1) for i in range(3)]
    await collector.collect_text("casino")
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await asyncio.wait_for(collector.flush(), 10)
    assert "handling it again" in caplog.text
    assert all([await store.get(i) for i in ids])
    assert [f.item.value for f in collector.failures] == ["casino"]
    assert (await collector.status()).spool.dead_letters == 1  # type: ignore[union-attr]
    await collector.aclose()


async def test_a_replayed_item_stored_before_is_not_a_conflict(tmp_path: Path) -> None:
    """A replay whose (non-deterministic) step output differs from what is stored is no failure."""
    db = tmp_path / "f.db"
    store = await SQLiteFeedbackStore.open(f"sqlite:///{db}")
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=4)
    stamped = item.replace(metadata={"processed_at": 1.0})
    await store.save(stamped)  # stored before the crash, with the step's output
    spool = SQLiteSpool(f"{db}-spool", identity=store.location or "")
    await spool.append(Entry(item, "rating"))  # ... but its spool entry was never deleted
    await spool.aclose()

    collector = FeedbackCollector(store, _config())
    collector.pipeline.add_step(lambda i: i.replace(metadata={"processed_at": time.time()}))
    await collector.start()
    await asyncio.wait_for(collector.flush(), 10)
    assert collector.failures == []
    assert (await store.get(item.id)) == stamped
    status = await collector.status()
    assert status.spool is not None
    assert (status.spool.depth, status.spool.dead_letters) == (0, 0)
    await collector.aclose()
    await store.aclose()


@pytest.mark.parametrize("other_by", ["time", "owner"])
async def test_a_replayed_item_conflicting_with_another_item_is_set_aside(
    tmp_path: Path, other_by: str
) -> None:
    """A replayed item under the id of a different stored item is a conflict, not dropped."""
    db = tmp_path / "f.db"
    store = await SQLiteFeedbackStore.open(f"sqlite:///{db}")
    at = datetime.now(UTC)
    other = FeedbackItem(
        FeedbackType.RATING, 1, {"owner_id": "project-a"}, id="shared", created_at=at
    )
    await store.save(other)  # another submitter's item under that id
    if other_by == "owner":  # same type and time: another project's item
        mine = other.replace(value=5, context={"owner_id": "project-b"})
    else:
        later = at + timedelta(seconds=1)
        mine = other.replace(value=5, created_at=later)
    spool = SQLiteSpool(f"{db}-spool", identity=store.location or "")
    await spool.append(Entry(mine, "rating"))  # acknowledged, never written: a crash
    await spool.aclose()

    collector = FeedbackCollector(store, _config())
    try:
        await collector.start()
        await asyncio.wait_for(collector.flush(), 10)
        [failure] = collector.failures
        assert (failure.item.value, type(failure.error)) == (5, FeedbackConflictError)
        status = await collector.status()
        assert status.spool is not None
        assert (status.spool.depth, status.spool.dead_letters) == (0, 1)
        assert (await store.get("shared")) == other
    finally:
        await collector.aclose()
        await store.aclose()


async def test_a_store_that_raises_oddly_sets_aside_only_the_item_at_fault() -> None:
    """A batch the store keeps failing with an unexpected error is split; the rest is stored."""

    class Picky(WrappedStore):
        async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
            if any(i.value == 3 for i in batch):
                msg = "cannot handle 3"
                raise TypeError(msg)
            return None

    store = Picky()
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1))
    ids = [await collector.collect_rating(v) for v in (1, 2, 3, 4)]
    await asyncio.wait_for(collector.flush(), 10)
    [failure] = collector.failures
    assert failure.item.value == 3
    assert isinstance(failure.error, TypeError)
    assert [v for v in (1, 2, 4) if await store.get(ids[v - 1])] == [1, 2, 4]
    await collector.aclose()


@pytest.mark.parametrize("ack", ["queued", "durable"])
async def test_a_submitted_item_is_a_copy_of_the_callers(ack: str) -> None:
    """submit(item) keeps what was sent: changing the item's dicts later changes nothing."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, _config(ack=ack))
    item = FeedbackItem(FeedbackType.RATING, 1, context={"k": "v"}, metadata={"m": [1]})
    await collector.submit(item)
    item.context["k"] = "changed"
    item.metadata["m"].append(2)
    await collector.flush()
    stored = await store.get(item.id)
    assert stored is not None
    assert (stored.context, stored.metadata) == ({"k": "v"}, {"m": [1]})
    await collector.aclose()


async def test_without_async_processing_a_closed_collector_refuses_and_announces_nothing() -> None:
    """After aclose, a synchronous collector refuses submissions too; nothing is stored."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    heard: list[FeedbackSubmitted] = []
    collector.events.subscribe(FeedbackSubmitted, heard.append)
    await collector.collect_rating(1)
    await collector.aclose()
    with pytest.raises(FeedbackError, match="closed"):
        await collector.collect_rating(2)
    with pytest.raises(FeedbackError, match="closed"):
        await collector.submit_feedback("t", 4)
    with pytest.raises(FeedbackError, match="closed"):
        await collector.submit_payloads([{"score": 3}, {"score": 4}])
    assert len(heard) == 1
    assert (await store.aggregate(window_hours=1)).total_count == 1


async def test_a_refused_item_is_announced_as_failed_and_a_closed_collector_announces_nothing() -> (
    None
):
    """Spool full: the announced item also fails (stage accept); after the close, no events."""
    gate = asyncio.Event()

    async def hold(item: FeedbackItem) -> FeedbackItem:
        await gate.wait()
        return item

    collector = FeedbackCollector(
        MemoryFeedbackStore(), _config(ack="queued", queue_max_size=1, backpressure_wait_ms=10)
    )
    collector.pipeline.add_step(hold)
    heard: list[tuple[str, Any, str]] = []
    collector.events.subscribe(
        FeedbackSubmitted, lambda e: heard.append(("submitted", e.item.value, ""))
    )
    collector.events.subscribe(
        FeedbackFailed, lambda e: heard.append(("failed", e.item.value, e.stage))
    )
    await collector.collect_rating(1)
    await asyncio.sleep(0.1)  # the writer takes it and waits in the step; the spool is full
    with pytest.raises(FeedbackOverloadedError):
        await collector.collect_rating(2)
    assert heard == [("submitted", 1, ""), ("submitted", 2, ""), ("failed", 2, "accept")]
    assert collector.failures == []  # refused to the caller, not set aside
    gate.set()
    await collector.aclose()
    heard.clear()
    with pytest.raises(FeedbackError, match="closed"):
        await collector.collect_rating(3)
    with pytest.raises(FeedbackError, match="closed"):
        await collector.submit_payloads([{"score": 3}])
    assert heard == []


class _HangingStore(WrappedStore):
    """A store whose writes never answer (a blackholed database)."""

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        await asyncio.Event().wait()
        return None


@pytest.mark.parametrize("store_kind", ["down", "hanging"])
async def test_queued_submitters_are_not_held_by_a_store_outage(store_kind: str) -> None:
    """ack: queued returns once the item is in memory while the store fails or hangs.

    A full queue then refuses with FeedbackOverloadedError, as the durable spool does.
    """
    store = FlakyStore(10**9) if store_kind == "down" else _HangingStore()
    collector = FeedbackCollector(
        store, _config(ack="queued", queue_max_size=300, backpressure_wait_ms=50)
    )
    accepted = 0

    async def submit_until_refused() -> None:
        nonlocal accepted
        for _ in range(1_000):
            await asyncio.wait_for(collector.collect_rating(1), 2)
            accepted += 1

    with pytest.raises(FeedbackOverloadedError):
        await submit_until_refused()
    assert 250 <= accepted <= 300  # the queue's room (less a batch the writer holds)
    assert collector.counters["accepted"] == accepted
    await collector.aclose(0.2)


@pytest.mark.parametrize("how", ["inline", "wait_for", "gather"])
@pytest.mark.parametrize("ack", ["queued", "durable"])
async def test_a_step_submitting_into_a_full_spool_does_not_stall_the_writer(
    ack: str, how: str, tmp_path: Path
) -> None:
    """A step submitting into a full spool goes beyond its capacity instead of waiting.

    Only the writer can make room; outside submitters keep being served meanwhile.
    """
    store = MemoryFeedbackStore()
    config = _config(
        ack=ack,
        queue_max_size=100,
        spool_max_items=100,
        spool_url=f"sqlite:///{tmp_path / 'spool'}" if ack == "durable" else None,
        backpressure_wait_ms=2_000,
    )
    collector = FeedbackCollector(store, config)

    async def follow_up(item: FeedbackItem) -> FeedbackItem:
        if item.feedback_type is FeedbackType.RATING and item.value == 1:
            label = collector.collect_label("seen", {"rating": item.id})
            if how == "inline":
                await label
            elif how == "wait_for":  # a task of its own on Python 3.11
                await asyncio.wait_for(label, 30)
            else:
                await asyncio.gather(label)
        return item

    collector.pipeline.add_step(follow_up)

    async def submitter(n: int) -> None:
        for _ in range(n):
            await collector.collect_rating(1)

    await asyncio.gather(*(submitter(60) for _ in range(10)))
    await asyncio.wait_for(collector.flush(), 30)  # every rating: their steps have run
    await asyncio.wait_for(collector.flush(), 30)  # the labels those steps submitted
    assert collector.failures == []
    assert len(await store.find_by_type(FeedbackType.RATING, limit=1_000)) == 600
    assert len(await store.find_by_type(FeedbackType.LABEL, limit=1_000)) == 600
    await collector.aclose()


class _Located(WrappedStore):
    """A store that says where it keeps its items, as the database stores do."""

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location


WRITTEN_FOR = "postgresql://u:s3cret@127.0.0.1:5432/db"


@pytest.mark.parametrize(
    ("location", "settings"),
    [
        ("postgresql://u:s3cret@localhost:5432/db", {}),  # the same database, spelt otherwise
        (WRITTEN_FOR, {"ack": "queued"}),
        (WRITTEN_FOR, {"async_processing": False}),
    ],
    ids=["another url", "queued", "sync"],
)
async def test_a_spool_this_run_will_not_write_is_reported(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    location: str,
    settings: dict[str, Any],
) -> None:
    """Acknowledged items left where this run's configuration does not look are an ERROR."""
    monkeypatch.chdir(tmp_path)
    spool = SQLiteSpool(default_spool_path(WRITTEN_FOR), identity=WRITTEN_FOR)
    await spool.append(Entry(FeedbackItem(feedback_type=FeedbackType.RATING, value=1), "rating"))
    await spool.aclose()
    collector = FeedbackCollector(_Located(location), _config(**settings))
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await collector.start()
    [record] = [r for r in caplog.records if "acknowledged" in r.getMessage()]
    message = record.getMessage()
    assert "holds 1 acknowledged feedback item(s) for postgresql://u:****@127.0.0.1" in message
    assert "s3cret" not in message
    await collector.aclose()


async def test_a_spool_this_run_adopts_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same configuration drains what it spooled before: no error, the item is stored."""
    monkeypatch.chdir(tmp_path)
    spool = SQLiteSpool(default_spool_path(WRITTEN_FOR), identity=WRITTEN_FOR)
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=1)
    await spool.append(Entry(item, "rating"))
    await spool.aclose()
    store = _Located(WRITTEN_FOR)
    collector = FeedbackCollector(store, _config())
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await collector.start()
        await asyncio.wait_for(collector.flush(), 10)
    assert "acknowledged" not in caplog.text
    assert await store.get(item.id) == item
    await collector.aclose()


def _fail_the_second_dead_letter_once(spool: SQLiteSpool) -> None:
    """Make the spool's second dead letter fail (disk full), once."""
    keep = spool._dead
    calls: list[Any] = []

    def second_fails_once(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) == 2:
            msg = "database or disk is full"
            raise sqlite3.OperationalError(msg)
        keep(*args, **kwargs)

    spool._dead = second_fails_once  # type: ignore[method-assign]


async def test_items_kept_aside_before_a_batch_is_handled_again_are_kept_once() -> None:
    """A batch handled again after a failed dead letter keeps each refused item once.

    The ones kept before the failure are not kept, nor reported, a second time.
    """
    collector, spool = await _refusing_texts(WrappedStore())
    _fail_the_second_dead_letter_once(spool)
    await collector.submit_payloads(
        [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"score": 1}]
    )
    await asyncio.wait_for(collector.flush(), 10)
    letters = await spool.dead_letters()
    assert sorted(letter.item.value for letter in letters if letter.item) == ["a", "b"]
    assert sorted(f.item.value for f in collector.failures) == ["a", "b"]
    assert collector.counters["failed"] == 2
    await collector.aclose()


class _RefusesZeros(WrappedStore):
    """Refuses, as invalid, every batch holding a rating of 0."""

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        if any(item.value == 0 for item in batch):
            return Err(FeedbackValidationError("score", "must not be 0"))
        return None


async def test_a_batch_handled_again_does_not_store_or_announce_an_item_twice() -> None:
    """Items stored before a dead letter failed are neither written nor counted again."""
    store = _RefusesZeros()
    collector = FeedbackCollector(store, _config(retry_backoff_ms=1))
    await collector.start()
    assert collector._writer is not None
    spool = collector._writer.spool
    assert isinstance(spool, SQLiteSpool)
    _fail_the_second_dead_letter_once(spool)
    stored: list[object] = []
    collector.events.subscribe(FeedbackStored, lambda event: stored.append(event.item.value))
    await collector.submit_payloads([{"score": v} for v in (1, 0, 2, 0)])
    await asyncio.wait_for(collector.flush(), 10)
    assert sorted(stored) == [1, 2]  # type: ignore[type-var]
    assert (collector.counters["stored"], collector.counters["failed"]) == (2, 2)
    await collector.aclose()


async def test_a_task_that_outlives_its_batch_waits_like_any_caller() -> None:
    """A task a subscriber started is the writer only while its batch is handled.

    Started in one batch and still running later, its deletion first writes what it
    submitted, as every caller's does.
    """
    collector = FeedbackCollector(MemoryFeedbackStore(), _config())
    go = asyncio.Event()
    late: list[asyncio.Task[Any]] = []

    async def later() -> Any:
        await go.wait()
        await collector.collect_rating(3, context={"session_id": "late"})
        return await collector.delete(session_id="late")

    def start_once(event: FeedbackStored) -> None:
        if not late:
            late.append(asyncio.get_running_loop().create_task(later()))

    collector.events.subscribe(FeedbackStored, start_once)
    await collector.collect_rating(5)
    await asyncio.wait_for(collector.flush(), 10)
    go.set()
    receipt = await asyncio.wait_for(late[0], 10)
    assert receipt.items == 1
    await collector.flush()
    assert await collector.store.find_by_session("late") == []
    await collector.aclose()
