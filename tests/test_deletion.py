"""Deletion through the collector: every place an item lives, with a receipt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import (
    Err,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStorageError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Result,
)
from ai_feedback.spool.sqlite import SQLiteSpool
from ai_feedback.stores.sqlite import SQLiteFeedbackStore


async def _collect(collector: FeedbackCollector, session: str, trace: str, owner: str) -> str:
    async with collector.context("answer", input={"q": session}, context_id=trace) as op:
        op.output = {"a": "answer"}
    return await collector.submit_payload(
        {
            "type": "rating",
            "score": 4,
            "trace_id": trace,
            "context": {"session_id": session, "owner_id": owner},
        }
    )


async def test_delete_by_session_removes_items_payloads_and_captures(tmp_path: Path) -> None:
    """The receipt counts what went; no read returns the session afterwards."""
    config = FeedbackConfig(async_processing=False, store_raw_payloads=True)
    async with await SQLiteFeedbackStore.open(tmp_path / "f.db") as store:
        collector = FeedbackCollector(store, config)
        gone = [await _collect(collector, "s1", f"t{i}", "u1") for i in range(3)]
        kept = await _collect(collector, "s2", "t9", "u1")

        receipt = await collector.delete(session_id="s1")

        assert receipt.criteria == {"session_id": "s1"}
        assert (receipt.items, receipt.raw_payloads, receipt.captures) == (3, 3, 3)
        assert (receipt.cache_entries, receipt.dead_letters) == (0, 0)
        assert receipt.to_dict()["removed"]["items"] == 3
        assert receipt.rollup_rows in (1, 2)  # one owner and rating: a row per hour (or two)
        assert await store.find_by_session("s1") == []
        for item_id in gone:
            assert await store.get(item_id) is None
            assert await collector.get_raw_payload(item_id) is None
        assert collector.captures.get("t0") is None
        assert collector.captures.get("t9") is not None
        assert (await collector.get_feedback_stats())["total_count"] == 1
        assert await store.get(kept) is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "where"),
        ({"where": FeedbackFilter()}, "where"),
        ({"where": FeedbackFilter(session_id="s"), "owner_id": "u"}, "where"),
        ({"session_id": ""}, "session_id"),
        ({"item_id": 7}, "item_id"),
        ({"where": {"session_id": "s"}}, "where"),
    ],
)
async def test_bad_deletions_name_the_field_and_remove_nothing(
    kwargs: dict[str, Any], field: str
) -> None:
    """Nothing set, both forms at once, or a bad value: a validation error, nothing removed."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    await _collect(collector, "s", "t", "u")
    with pytest.raises(FeedbackValidationError) as info:
        await collector.delete(**kwargs)
    assert info.value.field == field
    assert len(await store.find_by_session("s")) == 1


async def test_items_still_queued_are_deleted_too(tmp_path: Path) -> None:
    """An item accepted just before the deletion is written first, then deleted."""
    config = FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/spool", batch_max_delay_ms=5000)
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, config)
    await collector.start()
    try:
        await collector.submit_payload({"score": 5, "context": {"owner_id": "u"}})
        receipt = await collector.delete(owner_id="u")
        assert receipt.items == 1
        await collector.flush()
        assert await store.find_by_type(FeedbackType.RATING) == []
    finally:
        await collector.aclose()


async def test_set_aside_items_are_deleted_from_the_dead_letters(tmp_path: Path) -> None:
    """A refused item (here a conflict) is removed from failures and the spool's dead letters."""
    store = await SQLiteFeedbackStore.open(tmp_path / "f.db")
    stored = FeedbackItem(FeedbackType.RATING, 1, context={"owner_id": "u"})
    await store.save(stored)
    collector = FeedbackCollector(store, FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/sp"))
    await collector.start()
    try:
        payload = {"id": stored.id, "score": 5, "context": {"owner_id": "u"}}
        await collector.submit_payload(payload)
        await collector.flush()
        assert len(collector.failures) == 1
        spool = collector._writer.spool  # type: ignore[union-attr]
        assert isinstance(spool, SQLiteSpool)
        assert len(await spool.dead_letters()) == 1

        receipt = await collector.delete(owner_id="u")

        assert (receipt.items, receipt.dead_letters) == (1, 1)
        assert collector.failures == []
        assert await spool.dead_letters() == []
    finally:
        await collector.aclose()
        await store.aclose()


async def test_a_store_that_cannot_delete_is_a_storage_error() -> None:
    """A custom store without delete() fails clearly instead of pretending."""

    class Minimal:
        def __init__(self) -> None:
            self.inner = MemoryFeedbackStore()

        def __getattr__(self, name: str) -> Any:
            if name in {"delete", "scan"}:
                raise AttributeError(name)
            return getattr(self.inner, name)

        async def save(self, feedback: FeedbackItem) -> Any:
            return await self.inner.save(feedback)

        async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
            return await self.inner.find_by_session(session_id)

        async def find_by_type(self, feedback_type: FeedbackType, *, limit: int = 100) -> Any:
            return await self.inner.find_by_type(feedback_type, limit=limit)

        async def aggregate(self, *, window_hours: int = 24) -> Any:
            return await self.inner.aggregate(window_hours=window_hours)

    collector = FeedbackCollector(Minimal(), FeedbackConfig(async_processing=False))
    with pytest.raises(FeedbackStorageError, match="cannot delete"):
        await collector.delete(session_id="s")


async def test_a_trace_deletion_for_one_owner_spares_another_owners_capture() -> None:
    """Deleting (trace, owner) removes only captures of items that matched."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    await _collect(collector, "s", "shared-trace", "bob")
    receipt = await collector.delete(FeedbackFilter(trace_id="shared-trace", owner_id="alice"))
    assert (receipt.items, receipt.captures) == (0, 0)
    assert collector.captures.get("shared-trace") is not None
    receipt = await collector.delete(FeedbackFilter(trace_id="shared-trace", owner_id="bob"))
    assert (receipt.items, receipt.captures) == (1, 1)
    assert collector.captures.get("shared-trace") is None
    await _answer_only(collector, "lonely-trace")
    receipt = await collector.delete(trace_id="lonely-trace")  # the trace alone: its capture
    assert (receipt.items, receipt.captures) == (0, 1)


async def _answer_only(collector: FeedbackCollector, trace: str) -> None:
    async with collector.context("answer", input="q", context_id=trace) as op:
        op.output = "a"


class _Unreachable:
    """Another process's view of the database: its writes fail while ``away`` is set."""

    def __init__(self, store: SQLiteFeedbackStore) -> None:
        self.store = store
        self.away = True

    async def save_accepted(
        self, items: Any, accepted_at: Any, *, raw_payloads: Any = None, replace: bool = False
    ) -> Result[list[str], Exception]:
        if self.away:
            return Err(FeedbackStorageError("connection refused"))
        return await self.store.save_accepted(
            items, accepted_at, raw_payloads=raw_payloads, replace=replace
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_a_deletion_withdraws_what_another_collectors_spool_holds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """
    Items another collector accepted before a deletion, and writes after it, are not stored.

    Two collectors on one database stand for two processes: the first accepts items
    into its own spool while the database is out of its reach, the second deletes the
    session, then the first's writer drains its spool.
    """
    db = tmp_path / "f.db"
    async with (
        await SQLiteFeedbackStore.open(db) as mine,
        await SQLiteFeedbackStore.open(db) as theirs,
    ):
        outage = _Unreachable(theirs)
        config = FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/other.spool", retry_backoff_ms=10)
        other = FeedbackCollector(outage, config)
        await other.start()
        try:
            doomed = [
                await other.collect_rating(3, context={"session_id": "s1"}) for _ in range(20)
            ]
            kept = [await other.collect_rating(4, context={"session_id": "s2"}) for _ in range(5)]

            here = FeedbackCollector(mine, FeedbackConfig(async_processing=False))
            receipt = await here.delete(session_id="s1")
            assert receipt.items == 0  # nothing had landed yet
            newer = await other.collect_rating(5, context={"session_id": "s1"})

            outage.away = False
            with caplog.at_level(logging.INFO, logger="ai_feedback"):
                await other.flush()
            assert other.counters["withdrawn"] == 20
            assert (await other.status()).withdrawn == 20
            assert "20 feedback item(s) accepted before a deletion" in caplog.text
        finally:
            await other.aclose()
        assert {i.id for i in await mine.find_by_session("s1")} == {newer}
        assert {i.id for i in await mine.find_by_session("s2")} == set(kept)
        for item_id in doomed:
            assert await mine.get(item_id) is None
        assert (await mine.aggregate()).total_count == 6


async def test_a_withdrawn_item_beside_a_conflict_is_withdrawn_and_the_conflict_set_aside(
    tmp_path: Path,
) -> None:
    """The writer's conflict path still withdraws: one item set aside, one withdrawn."""
    db = tmp_path / "f.db"
    async with (
        await SQLiteFeedbackStore.open(db) as mine,
        await SQLiteFeedbackStore.open(db) as theirs,
    ):
        stored = FeedbackItem(FeedbackType.RATING, 1, {"session_id": "s2"})
        assert (await mine.save(stored)).is_ok()
        outage = _Unreachable(theirs)
        config = FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/other.spool", retry_backoff_ms=10)
        other = FeedbackCollector(outage, config)
        await other.start()
        try:
            clash = {"id": stored.id, "score": 5, "context": {"session_id": "s2"}}
            await other.submit_payloads([clash, {"score": 3, "context": {"session_id": "s1"}}])
            here = FeedbackCollector(mine, FeedbackConfig(async_processing=False))
            await here.delete(session_id="s1")
            outage.away = False
            await other.flush()
            assert (other.counters["withdrawn"], other.counters["failed"]) == (1, 1)
            assert other.counters["stored"] == 0
            assert len(other.failures) == 1
        finally:
            await other.aclose()
        assert await mine.get(stored.id) == stored
        assert await mine.find_by_session("s1") == []
