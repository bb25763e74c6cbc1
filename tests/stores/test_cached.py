"""Tests specific to the Redis cache: hits, invalidation, expiry and Redis outages."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ai_feedback import (
    FeedbackItem,
    FeedbackStats,
    FeedbackStorageError,
    FeedbackSummary,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Ok,
    Result,
)
from ai_feedback.stores import _sqlite_schema as sqlite_sql
from ai_feedback.stores import cached
from ai_feedback.stores import sqlite as sqlite_store
from ai_feedback.stores.cached import CachedFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix
from tests.stores.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


class _CountingStore:
    """A memory store that counts the calls reaching it and can pause session reads."""

    def __init__(self) -> None:
        self.inner = MemoryFeedbackStore()
        self.calls: Counter[str] = Counter()
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        self.calls["save"] += 1
        return await self.inner.save(feedback)

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        self.calls["save_many"] += 1
        return await self.inner.save_many(items, raw_payloads=raw_payloads)

    async def get_raw_payload(self, item_id: str) -> Any:
        self.calls["get_raw_payload"] += 1
        return await self.inner.get_raw_payload(item_id)

    async def get(self, item_id: str) -> FeedbackItem | None:
        self.calls["get"] += 1
        return await self.inner.get(item_id)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        self.calls["find_by_session"] += 1
        found = await self.inner.find_by_session(session_id)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return found

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        self.calls["find_by_type"] += 1
        return await self.inner.find_by_type(feedback_type, limit=limit)

    async def aggregate(
        self, *, window_hours: float = 24, model: str | None = None, provider: str | None = None
    ) -> FeedbackSummary:
        self.calls["aggregate"] += 1
        return await self.inner.aggregate(window_hours=window_hours, model=model, provider=provider)

    async def stats(
        self, *, window_hours: float = 24, model: str | None = None, provider: str | None = None
    ) -> FeedbackStats:
        self.calls["stats"] += 1
        return await self.inner.stats(window_hours=window_hours, model=model, provider=provider)

    async def aclose(self) -> None:
        self.calls["aclose"] += 1


@asynccontextmanager
async def _cache(
    inner: _CountingStore, url: str = REDIS_URL, **opts: Any
) -> AsyncIterator[CachedFeedbackStore]:
    prefix = unique_prefix()
    try:
        async with CachedFeedbackStore(inner, url, prefix=prefix, **opts) as cache:
            yield cache
    finally:
        await delete_keys(prefix)


@asynccontextmanager
async def _proxied_cache(
    inner: _CountingStore, **opts: Any
) -> AsyncIterator[tuple[TcpProxy, CachedFeedbackStore]]:
    """Yield a cache that reaches Redis through a proxy the test can cut or stall."""
    async with (
        TcpProxy("127.0.0.1", 6379) as proxy,
        _cache(inner, f"redis://{proxy.host}:{proxy.port}/0", **opts) as cache,
    ):
        yield proxy, cache


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the test Redis, to look at what the cache wrote."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def _rating(value: float = 4, *, ago_s: float = 0, **context: str) -> FeedbackItem:
    return FeedbackItem(
        feedback_type=FeedbackType.RATING,
        value=value,
        context=context,
        created_at=datetime.now(UTC) - timedelta(seconds=ago_s),
    )


async def _read_everything(cache: CachedFeedbackStore, item_id: str) -> list[object]:
    return [
        await cache.get(item_id),
        await cache.find_by_session("s"),
        await cache.find_by_type(FeedbackType.RATING),
        await cache.aggregate(),
        await cache.stats(model="m"),
    ]


async def test_second_read_is_served_from_redis() -> None:
    """Each kind of read reaches the wrapped store once; the repeat comes from Redis, equal."""
    inner = _CountingStore()
    item = _rating(4.5, session_id="s", model="m")
    await inner.inner.save(item)
    async with _cache(inner) as cache:
        first = await _read_everything(cache, item.id)
        second = await _read_everything(cache, item.id)
    assert second == first
    assert first[0] == item
    reads = ("get", "find_by_session", "find_by_type", "aggregate", "stats")
    assert {name: inner.calls[name] for name in reads} == dict.fromkeys(reads, 1)


async def test_save_invalidates_session_type_and_aggregates() -> None:
    """A save makes the next session, type, aggregate and stats reads show the new item."""
    inner = _CountingStore()
    old = _rating(2, ago_s=10, session_id="s", model="m")
    new = _rating(5, session_id="s", model="m")
    async with _cache(inner) as cache:
        await cache.save(old)
        await _read_everything(cache, old.id)
        assert await cache.save(new) == Ok(new.id)
        item, session, ratings, summary, stats = await _read_everything(cache, new.id)
    assert item == new
    assert session == ratings == [new, old]
    assert isinstance(summary, FeedbackSummary)
    assert (summary.total_count, summary.average_rating) == (2, 3.5)
    assert isinstance(stats, FeedbackStats)
    assert stats.rating_max == 5


async def test_save_many_invalidates_and_passes_raw_payloads_through() -> None:
    """save_many invalidates like save, and raw payloads reach the wrapped store."""
    inner = _CountingStore()
    first, second = _rating(1, ago_s=1, session_id="s"), _rating(3, session_id="s")
    async with _cache(inner) as cache:
        assert await cache.find_by_session("s") == []
        assert await cache.save_many([first, second], raw_payloads={first.id: {"score": 1}}) == Ok(
            [first.id, second.id]
        )
        assert await cache.find_by_session("s") == [second, first]
        assert (await cache.aggregate()).total_count == 2
        assert await cache.get_raw_payload(first.id) == {"score": 1}
        assert await cache.save_many([]) == Ok([])


async def test_find_by_type_never_truncates_a_larger_limit() -> None:
    """A list cached for limit 2 does not answer limit 5; one cached for 5 answers 3."""
    inner = _CountingStore()
    items = [_rating(ago_s=10 - i) for i in range(6)]
    await inner.inner.save_many(items)
    newest = items[::-1]
    async with _cache(inner) as cache:
        assert await cache.find_by_type(FeedbackType.RATING, limit=2) == newest[:2]
        assert await cache.find_by_type(FeedbackType.RATING, limit=5) == newest[:5]
        assert await cache.find_by_type("rating", limit=3) == newest[:3]  # type: ignore[arg-type]
        assert inner.calls["find_by_type"] == 2
        assert await cache.find_by_type(FeedbackType.RATING, limit=100) == newest
        assert await cache.find_by_type(FeedbackType.RATING, limit=1000) == newest
        assert inner.calls["find_by_type"] == 3  # a list shorter than its limit is complete


async def test_entries_expire_after_their_ttl() -> None:
    """Once ttl_seconds (and stats_ttl_seconds) pass, reads reach the wrapped store again."""
    inner = _CountingStore()
    async with _cache(inner, ttl_seconds=1, stats_ttl_seconds=1) as cache:
        await cache.find_by_session("s")
        await cache.stats()
        await cache.find_by_session("s")
        await cache.stats()
        assert (inner.calls["find_by_session"], inner.calls["stats"]) == (1, 1)
        await asyncio.sleep(1.1)
        await cache.find_by_session("s")
        await cache.stats()
    assert (inner.calls["find_by_session"], inner.calls["stats"]) == (2, 2)


async def test_unreachable_redis_serves_the_store_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With nothing listening, reads and writes use the wrapped store and one WARNING is logged."""
    inner = _CountingStore()
    item = _rating(session_id="s")
    with caplog.at_level(logging.INFO, logger="ai_feedback"):
        async with CachedFeedbackStore(inner, CLOSED_PORT_URL, retry_after_seconds=0) as cache:
            assert await cache.ping() is False
            assert await cache.save(item) == Ok(item.id)
            assert await cache.find_by_session("s") == [item]
            assert await cache.find_by_session("s") == [item]
            assert (await cache.stats()).summary.total_count == 1
    assert inner.calls["find_by_session"] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "ai_feedback"
    assert "answering from the wrapped store" in warnings[0].getMessage()


async def test_redis_outage_mid_use_serves_no_stale_entry_after_recovery(
    caplog: pytest.LogCaptureFixture, redis: Redis
) -> None:
    """A write made while Redis is cut off is visible after it returns, and caching resumes."""
    inner = _CountingStore()
    old, new = _rating(1, ago_s=5, session_id="s"), _rating(5, session_id="s")
    async with _proxied_cache(inner, retry_after_seconds=0) as (proxy, cache):
        await cache.save(old)
        assert await cache.find_by_session("s") == [old]
        assert (await cache.aggregate()).total_count == 1
        await proxy.cut()
        with caplog.at_level(logging.INFO, logger="ai_feedback"):
            assert await cache.save(new) == Ok(new.id)
            assert await cache.find_by_session("s") == [new, old]
            # The entries the failed invalidation could not delete are still in Redis.
            assert await redis.exists(cache._prefix + "session:s", cache._stats_key) == 2
            await proxy.restore()
            assert await cache.find_by_session("s") == [new, old]
            assert (await cache.aggregate()).total_count == 2
        calls = inner.calls["find_by_session"]
        assert await cache.find_by_session("s") == [new, old]
        assert inner.calls["find_by_session"] == calls  # cached again
    levels = [r.levelno for r in caplog.records if r.name == "ai_feedback"]
    assert levels == [logging.WARNING, logging.INFO]
    assert "reachable again" in caplog.records[-1].getMessage()


async def test_redis_is_left_alone_for_retry_after_seconds_then_purged(
    caplog: pytest.LogCaptureFixture, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an error Redis is bypassed for retry_after_seconds; writes meanwhile force a purge."""
    monkeypatch.setattr(cached, "_PURGE_BATCH", 2)
    inner = _CountingStore()
    old, new = _rating(1, ago_s=5, session_id="s"), _rating(5, session_id="s")
    async with _proxied_cache(inner, retry_after_seconds=0.2) as (proxy, cache):
        await cache.save(old)
        for session in ("s", "t", "u"):
            await cache.find_by_session(session)
        await cache.aggregate()
        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="ai_feedback"):
            assert await cache.find_by_session("s") == [old]
        assert "during read" in caplog.text
        await proxy.restore()
        assert await cache.save(new) == Ok(new.id)
        assert await cache.find_by_session("s") == [new, old]
        stale = [cache._prefix + key for key in ("session:s", "session:t", "session:u")]
        assert await redis.exists(*stale) == 3  # bypassed: not even purged yet
        await asyncio.sleep(0.25)
        assert await cache.find_by_session("s") == [new, old]
        assert await redis.exists(*stale[1:]) == 0  # the purge took every entry
        assert (await cache.aggregate()).total_count == 2


async def test_stalled_redis_costs_one_socket_timeout_then_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When Redis stops answering, a read waits socket_timeout once; the next skips Redis."""
    inner = _CountingStore()
    item = _rating(session_id="s")
    await inner.inner.save(item)
    async with _proxied_cache(inner, socket_timeout=0.5, retry_after_seconds=5) as (proxy, cache):
        assert await cache.find_by_session("s") == [item]
        await proxy.stall()
        with caplog.at_level(logging.WARNING, logger="ai_feedback"):
            started = time.monotonic()
            assert await cache.find_by_session("s") == [item]
            assert await cache.find_by_session("s") == [item]
            elapsed = time.monotonic() - started
        await proxy.restore()
    # Two waits would take at least 1.0 s: one wait proves the second read skipped Redis.
    assert 0.5 <= elapsed < 1.0
    assert "TimeoutError" in caplog.text
    assert inner.calls["find_by_session"] == 3


async def test_redis_failing_before_the_fill_still_returns_the_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When Redis dies while the wrapped store answers, the answer is returned uncached."""
    inner = _CountingStore()
    item = _rating(session_id="s")
    await inner.inner.save(item)
    async with _proxied_cache(inner) as (proxy, cache):
        inner.gate = asyncio.Event()
        reader = asyncio.create_task(cache.find_by_session("s"))
        await inner.entered.wait()
        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="ai_feedback"):
            inner.gate.set()
            assert await reader == [item]
    assert "during fill" in caplog.text


async def test_unknown_ids_are_not_cached() -> None:
    """get() of a missing id asks the store every time, so a later save is seen at once."""
    inner = _CountingStore()
    item = _rating()
    async with _cache(inner) as cache:
        assert await cache.get(item.id) is None
        assert await cache.get(item.id) is None
        await cache.save(item)
        assert await cache.get(item.id) == item
    assert inner.calls["get"] == 3


async def test_fill_computed_before_a_concurrent_write_is_not_cached() -> None:
    """A read that computed its answer before a write does not leave that answer cached."""
    inner = _CountingStore()
    item = _rating(session_id="s")
    async with _cache(inner) as cache:
        inner.gate = asyncio.Event()
        reader = asyncio.create_task(cache.find_by_session("s"))
        await inner.entered.wait()
        await cache.save(item)
        inner.gate.set()
        assert await reader == []
        inner.gate = None
        assert await cache.find_by_session("s") == [item]


async def test_concurrent_identical_reads_agree() -> None:
    """Many identical reads at once all return the same answer, and so does the cache after."""
    inner = _CountingStore()
    await inner.inner.save_many([_rating(i % 5, session_id="s", model="m") for i in range(50)])
    async with _cache(inner) as cache:
        sessions = await asyncio.gather(*(cache.find_by_session("s") for _ in range(20)))
        stats = await asyncio.gather(*(cache.stats(model="m") for _ in range(20)))
        assert all(found == sessions[0] for found in sessions)
        assert all(s == stats[0] for s in stats)
        assert await cache.find_by_session("s") == sessions[0]
        assert await cache.stats(model="m") == stats[0]
    assert len(sessions[0]) == 50


async def test_unreadable_entry_is_treated_as_a_miss(redis: Redis) -> None:
    """A corrupt entry under the prefix is ignored and replaced by a fresh answer."""
    inner = _CountingStore()
    item = _rating(session_id="s")
    await inner.inner.save(item)
    async with _cache(inner) as cache:
        await redis.set(cache._prefix + "session:s", b"not json", px=60_000)
        assert await cache.find_by_session("s") == [item]
        assert await cache.find_by_session("s") == [item]
    assert inner.calls["find_by_session"] == 1


async def test_open_checks_redis_and_aclose_closes_only_what_it_owns() -> None:
    """open() pings Redis; aclose() is idempotent and closes the wrapped store only if owned."""
    inner = _CountingStore()
    prefix = unique_prefix()
    try:
        cache = await CachedFeedbackStore.open(inner, REDIS_URL, prefix=prefix, owns_store=True)
        assert await cache.ping() is True
        assert repr(cache).startswith(f"<CachedFeedbackStore prefix={prefix!r}")
        await cache.aclose()
        await cache.aclose()
        assert inner.calls["aclose"] == 1
        client = Redis.from_url(REDIS_URL)
        async with CachedFeedbackStore(inner, client, prefix=prefix) as borrowed:
            assert await borrowed.find_by_session("s") == []
        assert inner.calls["aclose"] == 1
        assert await client.ping() is True  # a client passed in stays open
        await client.aclose()
    finally:
        await delete_keys(prefix)


async def test_aclose_logs_a_failing_store_close_and_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owned store whose aclose raises is logged; closing still completes."""
    inner = _CountingStore()

    async def broken_close() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(inner, "aclose", broken_close)
    cache = CachedFeedbackStore(inner, REDIS_URL, prefix=unique_prefix(), owns_store=True)
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        await cache.aclose()
    assert "Closing" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_collecting_an_unclosed_cache_warns() -> None:
    """A cache that made its own client and is never closed warns with ResourceWarning."""
    cache = CachedFeedbackStore(MemoryFeedbackStore(), REDIS_URL)
    with pytest.warns(ResourceWarning, match="never closed"):
        del cache  # CPython collects it here: nothing else refers to it


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.save("not an item"), "feedback"),
        (lambda c: c.save_many([_rating(), None]), "feedback"),
        (lambda c: c.save_many([_rating()], raw_payloads=[1]), "raw_payloads"),
        (lambda c: c.get(""), "item_id"),
        (lambda c: c.get_raw_payload(None), "item_id"),
        (lambda c: c.find_by_session(" "), "session_id"),
        (lambda c: c.find_by_type("vote"), "feedback_type"),
        (lambda c: c.find_by_type(FeedbackType.TEXT, limit=0), "limit"),
        (lambda c: c.aggregate(window_hours=0), "window_hours"),
        (lambda c: c.aggregate(provider=""), "provider"),
        (lambda c: c.stats(window_hours=float("inf")), "window_hours"),
        (lambda c: c.stats(model=3), "model"),
    ],
)
async def test_bad_calls_raise_before_touching_redis_or_the_store(
    call: Any, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Invalid arguments raise FeedbackValidationError; neither the store nor Redis is reached."""
    inner = _CountingStore()
    with caplog.at_level(logging.WARNING, logger="ai_feedback"):
        async with CachedFeedbackStore(inner, CLOSED_PORT_URL) as cache:
            with pytest.raises(FeedbackValidationError) as info:
                await call(cache)
    assert info.value.field == field
    assert inner.calls == Counter()
    assert caplog.records == []  # any Redis call would have failed and logged


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"store": object()}, "store"),
        ({"redis_url_or_client": 6379}, "redis_url_or_client"),
        ({"redis_url_or_client": "http://127.0.0.1:6379"}, "redis_url_or_client"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": True}, "ttl_seconds"),
        ({"stats_ttl_seconds": float("nan")}, "stats_ttl_seconds"),
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"retry_after_seconds": -0.5}, "retry_after_seconds"),
        ({"prefix": ""}, "prefix"),
    ],
)
def test_bad_options_raise_validation_errors(kwargs: dict[str, Any], field: str) -> None:
    """Invalid constructor arguments raise FeedbackValidationError naming the argument."""
    arguments: dict[str, Any] = {"store": MemoryFeedbackStore(), "redis_url_or_client": REDIS_URL}
    arguments.update(kwargs)
    with pytest.raises(FeedbackValidationError) as info:
        CachedFeedbackStore(**arguments)
    assert info.value.field == field


async def test_rebuilding_the_rollup_drops_cached_statistics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rebuild through the cache counts rows loaded with SQL and serves no stale stats.

    Also when Redis is cut off during the rebuild: the cache is purged once it is back.
    """
    path = tmp_path / "f.db"
    loaded = [_rating(3, model="m") for _ in range(4)]
    async with await SQLiteFeedbackStore.open(f"sqlite:///{path}") as store:
        inner: Any = store
        async with _proxied_cache(inner, retry_after_seconds=0) as (proxy, cache):
            assert (await cache.save_many([_rating(5, model="m") for _ in range(2)])).is_ok()
            assert (await cache.stats(model="m")).summary.total_count == 2  # now cached
            with sqlite3.connect(path) as db:
                db.executemany(sqlite_sql.INSERT_SQL, sqlite_store._encode(loaded[:2]))
            assert (await cache.stats(model="m")).summary.total_count == 2

            assert await cache.rebuild_rollup() == 4
            assert (await cache.stats(model="m")).summary.total_count == 4
            assert (await cache.aggregate(model="m")).total_count == 4

            with sqlite3.connect(path) as db:
                db.executemany(sqlite_sql.INSERT_SQL, sqlite_store._encode(loaded[2:]))
            assert not cache.purge_pending
            await proxy.cut()
            with caplog.at_level(logging.WARNING, logger="ai_feedback"):
                assert await cache.rebuild_rollup() == 6
            assert "during purge" in caplog.text
            assert cache.purge_pending
            await proxy.restore()
            assert (await cache.stats(model="m")).summary.total_count == 6
            assert not cache.purge_pending


async def test_rebuilding_needs_a_store_that_keeps_a_rollup() -> None:
    """A wrapped store without a rollup (the memory store) makes rebuild_rollup an error."""
    async with _cache(_CountingStore()) as cache:
        with pytest.raises(FeedbackStorageError, match="keeps no statistics rollup"):
            await cache.rebuild_rollup()
