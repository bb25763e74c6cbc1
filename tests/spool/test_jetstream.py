"""The NATS JetStream spool: reservations during long writes, consumer settings, closing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import DiscardPolicy

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackItem,
    FeedbackStorageError,
)
from ai_feedback._models import Entry, FeedbackType
from ai_feedback.spool.jetstream import JetStreamSpool
from tests.fakes import WrappedStore
from tests.spool.nats_server import NATS_URL, fresh_stream, spool_url
from tests.stores.backend_sqlite import open_store

pytestmark = pytest.mark.nats


class _SlowFirstWrite(WrappedStore):
    """Takes 2.5 s over its first batch write: longer than the spool's ack_wait."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = True

    async def before_write(self, batch: list[FeedbackItem]) -> None:
        if self.slow:
            self.slow = False
            await asyncio.sleep(2.5)


async def test_a_long_write_keeps_its_batch_reserved() -> None:
    """A write longer than ack_wait is not delivered again meanwhile: no double, no conflict."""
    async with fresh_stream() as name:
        store = _SlowFirstWrite()
        config = FeedbackConfig(spool_url=spool_url(name, ack_wait=1), batch_max_delay_ms=5)
        collector = FeedbackCollector(store, config)
        collector.pipeline.add_step(lambda i: i.replace(metadata={"at": time.time()}))
        ids = [await collector.collect_rating(v) for v in (1, 2, 3)]
        await asyncio.wait_for(collector.flush(), 20)
        assert collector.failures == []
        assert sum(store.batches) == 3  # each item written once
        assert all([await store.get(i) for i in ids])
        await collector.aclose()


async def test_the_consumer_takes_the_ack_wait_of_the_url() -> None:
    """Opening the spool with another ack_wait updates the existing durable consumer."""
    async with fresh_stream() as name:
        for ack_wait in (2, 5):
            spool = JetStreamSpool(spool_url(name, ack_wait=ack_wait), identity="x")
            await spool.start()
            await spool.aclose()
        nc = await nats.connect(NATS_URL)
        try:
            info = await nc.jetstream().consumer_info(name, f"{name.lower()}_writer")
        finally:
            await nc.close()
        assert info.config.ack_wait == 5


async def test_waiting_after_close_is_an_error() -> None:
    """wait_done() on a closed JetStream spool raises instead of polling forever."""
    async with fresh_stream() as name:
        spool = JetStreamSpool(spool_url(name), identity="x", consume=False)
        item = FeedbackItem(feedback_type=FeedbackType.RATING, value=1)
        mark = await spool.append(Entry(item, "rating"))
        waiter = asyncio.create_task(spool.wait_done(mark))
        await asyncio.sleep(0.05)
        await spool.aclose()
        with pytest.raises(FeedbackStorageError):
            await asyncio.wait_for(waiter, 5)


async def test_an_unreachable_server_is_a_storage_error() -> None:
    """A spool whose server does not answer fails to start with FeedbackStorageError."""
    spool = JetStreamSpool("nats://127.0.0.1:1?stream=NOPE", identity="x", full_wait=0.5)
    with pytest.raises(FeedbackStorageError, match="Could not set up"):
        await spool.start()


async def test_a_stream_feeding_another_store_is_refused_even_when_empty() -> None:
    """A second application on the same stream would take the first one's items: refused."""
    async with fresh_stream() as name:
        first = JetStreamSpool(spool_url(name), identity="sqlite:///a.db")
        await first.start()
        try:
            other = JetStreamSpool(spool_url(name), identity="sqlite:///c.db")
            with pytest.raises(FeedbackConfigurationError) as info:
                await other.start()
            assert info.value.key == "spool_url"
            assert "feeds sqlite:///a.db (0 item(s) waiting), not sqlite:///c.db" in str(info.value)
            same = JetStreamSpool(spool_url(name), identity="sqlite:///a.db")
            await same.start()  # another process of the same application is welcome
            await same.aclose()
        finally:
            await first.aclose()


async def test_a_lower_capacity_never_deletes_waiting_items(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A process with a lower spool_max_items keeps the stream's limit: nothing is dropped."""
    async with fresh_stream() as name:
        first = JetStreamSpool(spool_url(name), identity="x", capacity=100)
        await first.start()
        try:
            for _ in range(50):
                await first.append(
                    Entry(FeedbackItem(feedback_type=FeedbackType.RATING, value=1), "r")
                )
            lower = JetStreamSpool(spool_url(name), identity="x", capacity=10)
            await lower.start()
            await lower.aclose()
            assert (await first.status()).depth == 50
            assert "keeps its limit (100 items); spool_max_items (10)" in caplog.text
            higher = JetStreamSpool(spool_url(name), identity="x", capacity=200)
            await higher.start()
            assert (await higher.status()).capacity == 200
            await higher.aclose()
        finally:
            await first.aclose()
        nc = await nats.connect(NATS_URL)
        try:
            assert (await nc.jetstream().stream_info(name)).config.max_msgs == 200
        finally:
            await nc.close()


async def test_an_item_whose_dead_letter_cannot_be_kept_stays_in_the_spool() -> None:
    """A refused item is removed from the stream only once its dead letter is stored."""
    async with fresh_stream() as name:
        spool = JetStreamSpool(spool_url(name), identity="x", full_wait=1)
        await spool.start()
        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            dead = (await js.stream_info(f"{name}_DEAD")).config
            dead.max_msgs, dead.discard = 1, DiscardPolicy.NEW
            await js.update_stream(dead)
            await js.publish(f"{name.lower()}.items.dead", b"filler")  # the dead letters are full
            await spool.append(Entry(FeedbackItem(feedback_type=FeedbackType.RATING, value=1), "r"))
            [spooled] = await spool.take(10, 0)
            with pytest.raises(FeedbackStorageError, match="keep a dead letter"):
                await spool.dead_letter(spooled, "storage", ValueError("conflict"), 1)
            assert (await js.stream_info(name)).state.messages == 1  # not acknowledged
        finally:
            await nc.close()
            await spool.aclose()


async def test_without_a_writer_here_reads_wait_for_the_writers_a_bounded_time(
    tmp_path: Path,
) -> None:
    """An API-only process reads what is stored after backpressure_wait_ms, not forever."""
    async with fresh_stream() as name, open_store(tmp_path) as store:
        settings = {"spool_url": spool_url(name), "backpressure_wait_ms": 300}
        api = FeedbackCollector(store, FeedbackConfig(**settings, run_writer=False))
        try:
            await api.collect_rating(4)
            started = time.monotonic()
            assert (await api.get_feedback_stats())["total_count"] == 0  # no writer yet
            with pytest.raises(FeedbackStorageError, match="writers did not catch up"):
                await api.delete(trace_id="t")
            assert time.monotonic() - started < 5
            writer = FeedbackCollector(store, FeedbackConfig(**settings))
            try:
                await writer.start()
                await asyncio.wait_for(api.flush(), 20)  # until the writer stored it
                assert (await api.get_feedback_stats())["total_count"] == 1
            finally:
                await writer.aclose()
        finally:
            await api.aclose()
