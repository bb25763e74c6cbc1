"""
The SQL stores' deletion log: items accepted before a deletion are not written after it.

A deletion made without a limit is logged; `save_accepted` leaves out the items such a
deletion, made at or after their acceptance, matches. Checked on SQLite, PostgreSQL and
the Redis cache over SQLite, with the statistics rollup kept exact.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ai_feedback import (
    FeedbackConflictError,
    FeedbackFilter,
    FeedbackItem,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.protocols import SupportsDeletionLog
from ai_feedback.result import Ok
from ai_feedback.stores._deletion_log import KEEP_SECONDS
from ai_feedback.stores.cached import CachedFeedbackStore
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix
from tests.stores.backend_kinds import open_kind
from tests.stores.backend_postgresql import POSTGRES_URL

KINDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("cached", marks=pytest.mark.redis),
]


_store = open_kind


def _rating(session: str, score: int = 4, **context: str) -> FeedbackItem:
    return FeedbackItem(FeedbackType.RATING, score, {"session_id": session, **context})


async def _log_size(store: Any) -> int:
    if isinstance(store, PostgresFeedbackStore):
        async with store._connection("count") as conn:
            return int(await conn.fetchval("SELECT count(*) FROM feedback_deletion"))
    inner = store._store if isinstance(store, CachedFeedbackStore) else store
    assert isinstance(inner, SQLiteFeedbackStore)
    [(count,)] = await inner._fetch("SELECT count(*) FROM feedback_deletion", ())
    return int(count)


@pytest.mark.parametrize("kind", KINDS)
async def test_items_accepted_before_a_deletion_are_withdrawn(kind: str, tmp_path: Path) -> None:
    """Only items accepted before the deletion that it matches are left out."""
    async with _store(kind, tmp_path) as store:
        assert isinstance(store, SupportsDeletionLog)
        assert isinstance(store, SQLiteFeedbackStore | PostgresFeedbackStore | CachedFeedbackStore)
        stored = _rating("s1")
        assert (await store.save_many([stored])).is_ok()
        before = time.time()
        receipt = await store.delete(FeedbackFilter(session_id="s1"))
        assert receipt.items == 1
        after = time.time()

        late, other, new = _rating("s1", 2), _rating("s2", 5), _rating("s1", 3)
        result = await store.save_accepted(
            [late, other, new],
            [before, before, after],
            raw_payloads={late.id: {"late": True}, other.id: {"other": True}},
        )

        assert result == Ok([late.id])
        assert await store.get(late.id) is None
        assert await store.get_raw_payload(late.id) is None
        assert await store.get_raw_payload(other.id) == {"other": True}
        assert {i.id for i in await store.find_by_session("s1")} == {new.id}
        summary = await store.aggregate()
        assert (summary.total_count, summary.count_by_type["rating"]) == (2, 2)
        assert summary.average_rating == 4.0  # 5 and 3: the withdrawn 2 is not counted
        stats = await store.stats(window_hours=24)
        assert stats.summary.total_count == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("where", "matched"),
    [
        (FeedbackFilter(item_id="fixed-id"), {"fixed-id"}),
        (FeedbackFilter(trace_id="t1"), {"a"}),
        (FeedbackFilter(owner_id="u1", model="m1"), {"a"}),
        (FeedbackFilter(model="m2"), {"b"}),
        (FeedbackFilter(feedback_type=FeedbackType.TEXT), {"c"}),
        (FeedbackFilter(feedback_type=FeedbackType.RATING, session_id="s9"), set()),
    ],
)
async def test_each_kind_of_filter_withdraws_what_it_matches(
    kind: str, tmp_path: Path, where: FeedbackFilter, matched: set[str]
) -> None:
    """Ids, traces, owners, models and types: the log matches as the deletion did."""
    items = {
        "a": FeedbackItem(
            FeedbackType.RATING, 4, {"trace_id": "t1", "owner_id": "u1", "model": "m1"}
        ),
        "b": FeedbackItem(FeedbackType.RATING, 2, {"model": "m2", "owner_id": "u1"}),
        "c": FeedbackItem(FeedbackType.TEXT, "fine", {"owner_id": "u2"}),
        "fixed-id": FeedbackItem(FeedbackType.RATING, 1, {}, id="fixed-id"),
    }
    async with _store(kind, tmp_path) as store:
        accepted = time.time()
        await store.delete(where)
        result = await store.save_accepted(list(items.values()), [accepted] * len(items))
        gone = {name for name, item in items.items() if item.id in result.unwrap()}
        assert gone == matched
        for name, item in items.items():
            assert (await store.get(item.id) is None) == (name in matched)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_time_window_deletion_withdraws_only_items_inside_it(
    kind: str, tmp_path: Path
) -> None:
    """since/until are kept in the log and compared with the items' creation times."""
    now = datetime.now(UTC)
    old = FeedbackItem(FeedbackType.RATING, 1, {}, created_at=now - timedelta(days=3))
    recent = FeedbackItem(FeedbackType.RATING, 5, {}, created_at=now - timedelta(hours=1))
    async with _store(kind, tmp_path) as store:
        accepted = time.time()
        await store.delete(FeedbackFilter(until=now - timedelta(days=2)))
        result = await store.save_accepted([old, recent], [accepted, accepted])
        assert result == Ok([old.id])
        assert (await store.aggregate()).total_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_bounded_deletions_are_not_logged(kind: str, tmp_path: Path) -> None:
    """A deletion with a limit (retention's batches) removes only what it found."""
    async with _store(kind, tmp_path) as store:
        accepted = time.time()
        await store.delete(FeedbackFilter(session_id="s1"), limit=10)
        item = _rating("s1")
        assert await store.save_accepted([item], [accepted]) == Ok([])
        assert await store.get(item.id) is not None
        assert await _log_size(store) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_batch_sent_again_after_a_deletion_is_withdrawn(kind: str, tmp_path: Path) -> None:
    """An item stored, deleted, then written again (a replay) stays deleted."""
    async with _store(kind, tmp_path) as store:
        item, other = _rating("s1"), _rating("s2")
        accepted = time.time()
        assert (await store.save_accepted([item, other], [accepted, accepted])).is_ok()
        await store.delete(FeedbackFilter(session_id="s1"))
        assert await store.save_accepted([item, other], [accepted, accepted]) == Ok([item.id])
        assert await store.get(item.id) is None
        assert (await store.aggregate()).total_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_old_log_rows_are_forgotten(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each logged deletion forgets those older than KEEP_SECONDS."""
    async with _store(kind, tmp_path) as store:
        await store.delete(FeedbackFilter(session_id="s1"))
        await store.delete(FeedbackFilter(session_id="s2"))
        assert await _log_size(store) == 2
        later = time.time() + KEEP_SECONDS + 60
        monkeypatch.setattr(time, "time", lambda: later)
        await store.delete(FeedbackFilter(session_id="s3"))
        assert await _log_size(store) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("accepted_at", "rule"),
    [
        ([], "must hold one time per item"),
        ([1.0, 2.0], "must hold one time per item"),
        (["now"], "must be seconds since the epoch"),
        ([True], "must be seconds since the epoch"),
        ([math.nan], "must be a finite number"),
        ([math.inf], "must be a finite number"),
    ],
)
async def test_bad_acceptance_times_are_refused_and_nothing_is_written(
    kind: str, tmp_path: Path, accepted_at: list[Any], rule: str
) -> None:
    """The error names accepted_at and its rule; the item is not stored."""
    async with _store(kind, tmp_path) as store:
        item = _rating("s1")
        with pytest.raises(FeedbackValidationError, match=rule) as caught:
            await store.save_accepted([item], accepted_at)
        assert caught.value.field == "accepted_at"
        assert await store.get(item.id) is None


@pytest.mark.parametrize("kind", KINDS)
async def test_an_invalid_item_is_refused_before_the_log_is_read(kind: str, tmp_path: Path) -> None:
    """save_accepted validates items like save_many (field named)."""
    async with _store(kind, tmp_path) as store:
        with pytest.raises(FeedbackValidationError) as caught:
            await store.save_accepted(["not an item"], [time.time()])
        assert caught.value.field == "feedback"


@pytest.mark.postgres
async def test_a_postgres_write_waits_for_a_deletion_and_sees_its_log(tmp_path: Path) -> None:
    """
    A deletion holding the log's lock makes checked writes wait, and they then read its row.

    The write's statement that reads the log starts after the lock is granted, so it sees
    a deletion committed while it waited (a statement that waited would not).
    """
    async with _store("postgresql", tmp_path) as store:
        schema = store.schema
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            deleting = conn.transaction()
            await deleting.start()
            await conn.execute("SELECT pg_advisory_xact_lock(1718903, hashtext(current_schema()))")
            item = _rating("s1")
            write = asyncio.create_task(store.save_accepted([item], [time.time()]))
            await asyncio.sleep(0.3)
            assert not write.done(), "the write did not wait for the deletion"
            await conn.execute(
                "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES ($1::json, $2)",
                '{"session_id": "s1"}',
                time.time(),
            )
            await deleting.commit()
            assert await asyncio.wait_for(write, 10) == Ok([item.id])
        finally:
            await conn.close()
        assert await store.get(item.id) is None


async def test_sqlite_writes_and_logged_deletions_share_the_write_lock(tmp_path: Path) -> None:
    """A deletion made by another connection while a write waits is seen by the write."""
    async with _store("sqlite", tmp_path) as store:
        other = sqlite3.connect(tmp_path / "sqlite.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            item = _rating("s1")
            write = asyncio.create_task(store.save_accepted([item], [time.time()]))
            await asyncio.sleep(0.3)
            assert not write.done()
            other.execute(
                "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES (?, ?)",
                ('{"session_id": "s1"}', time.time()),
            )
            other.execute("COMMIT")
            assert await asyncio.wait_for(write, 10) == Ok([item.id])
        finally:
            other.close()
        assert await store.get(item.id) is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [1, 3])
async def test_a_conflict_is_reported_as_by_save_many(kind: str, tmp_path: Path, size: int) -> None:
    """Another item under a stored id is Err(FeedbackConflictError); nothing is written."""
    async with _store(kind, tmp_path) as store:
        first = _rating("s1", 1)
        assert (await store.save_many([first])).is_ok()
        clash = FeedbackItem(FeedbackType.RATING, 5, {"session_id": "s1"}, id=first.id)
        others = [_rating("s2") for _ in range(size - 1)]
        result = await store.save_accepted([clash, *others], [time.time()] * size)
        assert isinstance(result.unwrap_err(), FeedbackConflictError)
        assert list(result.unwrap_err().ids) == [first.id]
        assert (await store.get(first.id)) == first
        assert (await store.aggregate()).total_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_item_sent_again_after_a_deletion_counts_from_its_latest_copy(
    kind: str, tmp_path: Path
) -> None:
    """Two copies of one item in a batch, on both sides of a deletion: it is stored."""
    async with _store(kind, tmp_path) as store:
        item = _rating("s1")
        before = time.time()
        await store.delete(FeedbackFilter(session_id="s1"))
        after = time.time()
        for times in ([before, after], [after, before]):
            assert await store.save_accepted([item, item], times) == Ok([])
        assert await store.get(item.id) == item
        assert (await store.aggregate()).total_count == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "criteria", ['{"model": ""}', '{"colour": "red"}', "not json", '{"since": "yesterday"}']
)
async def test_a_log_row_that_cannot_be_read_is_skipped_and_logged(
    kind: str, tmp_path: Path, criteria: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable row (edited by hand, say) is not applied; the others still are."""
    async with _store(kind, tmp_path) as store:
        accepted = time.time()
        await store.delete(FeedbackFilter(session_id="s1"))
        await _insert_log_row(store, criteria, time.time())
        doomed, kept = _rating("s1"), _rating("s2")
        with caplog.at_level(logging.ERROR, logger="ai_feedback"):
            result = await store.save_accepted([doomed, kept], [accepted, accepted])
        assert result == Ok([doomed.id])
        assert await store.get(kept.id) == kept
        assert "A logged deletion cannot be read and is not applied" in caplog.text


async def _insert_log_row(store: Any, criteria: str, deleted_at: float) -> None:
    if isinstance(store, PostgresFeedbackStore):
        async with store._connection("log") as conn:
            await conn.execute(
                "INSERT INTO feedback_deletion (criteria, deleted_at) "
                "VALUES (to_json($1::text), $2)"
                if criteria == "not json"
                else "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES ($1::json, $2)",
                criteria.encode() if criteria != "not json" else criteria,
                deleted_at,
            )
        return
    inner = store._store if isinstance(store, CachedFeedbackStore) else store
    assert isinstance(inner, SQLiteFeedbackStore)
    async with inner._transaction("log") as db:
        await db.execute(
            "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES (?, ?)",
            (criteria, deleted_at),
        )


@pytest.mark.redis
async def test_a_cache_over_a_store_without_a_log_saves_everything(tmp_path: Path) -> None:
    """The Redis cache over the memory store: save_accepted is save_many, Ok([])."""
    prefix = unique_prefix()
    try:
        async with CachedFeedbackStore(MemoryFeedbackStore(), REDIS_URL, prefix=prefix) as store:
            accepted = time.time()
            await store.delete(FeedbackFilter(session_id="s1"))
            item = _rating("s1")
            assert await store.save_accepted([item], [accepted]) == Ok([])
            assert await store.get(item.id) == item
            with pytest.raises(FeedbackValidationError, match="one time per item"):
                await store.save_accepted([item], [])
    finally:
        await delete_keys(prefix)
