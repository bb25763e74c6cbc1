"""
Updates: `replace_many` (and `save_accepted(replace=True)`) on every store.

A new version replaces the item under its id; the statistics (and the SQL stores'
rollup) change with it, the raw payload is replaced, and an id stored under another
owner is never taken.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import (
    FeedbackConflictError,
    FeedbackFilter,
    FeedbackItem,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    SupportsReplace,
)
from ai_feedback.result import Ok
from ai_feedback.stores.cached import CachedFeedbackStore
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_kinds import open_kind
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema

KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("cached", marks=pytest.mark.redis),
]


_store = open_kind
NOW = datetime.now(UTC)


def _rating(score: float, item_id: str = "r1", owner: str = "u1", **context: Any) -> FeedbackItem:
    return FeedbackItem(
        FeedbackType.RATING,
        score,
        {"owner_id": owner, "model": "m", **context},
        {"name": "quality"},
        id=item_id,
        created_at=NOW,
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_new_version_replaces_the_item_and_its_statistics(
    kind: str, tmp_path: Path
) -> None:
    """The stored item, reads, statistics and the raw payload follow the latest version."""
    async with _store(kind, tmp_path) as store:
        assert isinstance(store, SupportsReplace)
        assert isinstance(
            store,
            MemoryFeedbackStore | SQLiteFeedbackStore | PostgresFeedbackStore | CachedFeedbackStore,
        )
        other = _rating(5, "r2")
        assert (await store.save_many([_rating(1), other])).is_ok()
        await store.get("r1")  # cached before the update, where there is a cache
        newer = FeedbackItem(
            FeedbackType.TEXT, "changed my mind", {"owner_id": "u1", "session_id": "s"}, id="r1"
        )
        result = await store.replace_many([newer], raw_payloads={"r1": {"v": 2}})
        assert result == Ok(["r1"])
        assert await store.get("r1") == newer
        assert await store.get_raw_payload("r1") == {"v": 2}
        assert [i.id for i in await store.find_by_session("s")] == ["r1"]
        summary = await store.aggregate()
        assert (summary.total_count, summary.average_rating) == (2, 5.0)
        assert summary.count_by_type["text"] == 1
        by_model = await store.stats(window_hours=24, model="m")
        assert by_model.summary.total_count == 1  # the new version has no model
        if isinstance(store, SQLiteFeedbackStore | PostgresFeedbackStore):
            await store.rebuild_rollup()  # a recount from the items changes nothing
            assert await store.aggregate() == summary
            assert await store.stats(window_hours=24, model="m") == by_model


@pytest.mark.parametrize("kind", KINDS)
async def test_replacing_an_unknown_id_stores_it_and_the_last_of_an_id_wins(
    kind: str, tmp_path: Path
) -> None:
    """An update of an id never stored creates it; in one batch the last version stands."""
    async with _store(kind, tmp_path) as store:
        result = await store.replace_many([_rating(1), _rating(2), _rating(4)])
        assert result.is_ok()
        assert await store.get("r1") == _rating(4)
        summary = await store.aggregate()
        assert (summary.total_count, summary.average_rating) == (1, 4.0)


@pytest.mark.parametrize("kind", KINDS)
async def test_an_id_of_another_owner_is_never_replaced(kind: str, tmp_path: Path) -> None:
    """Another owner's item under the id: a conflict, and nothing of the batch is stored."""
    async with _store(kind, tmp_path) as store:
        assert (await store.save_many([_rating(1, owner="u1")])).is_ok()
        mine = _rating(3, "r9", owner="u2")
        result = await store.replace_many([mine, _rating(5, owner="u2")])
        error = result.unwrap_err()
        assert isinstance(error, FeedbackConflictError)
        assert list(error.ids) == ["r1"]
        assert await store.get("r1") == _rating(1, owner="u1")
        assert await store.get("r9") is None
        assert (await store.aggregate()).average_rating == 1.0


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_replacements_are_refused_naming_the_field(kind: str, tmp_path: Path) -> None:
    """Invalid items and raw payloads name their field; nothing changes."""
    async with _store(kind, tmp_path) as store:
        assert (await store.save_many([_rating(1)])).is_ok()
        with pytest.raises(FeedbackValidationError) as caught:
            await store.replace_many([_rating(2), "not an item"])
        assert caught.value.field == "feedback"
        with pytest.raises(FeedbackValidationError) as caught:
            await store.replace_many([_rating(2)], raw_payloads={"elsewhere": 1})
        assert caught.value.field == "raw_payloads"
        assert await store.get("r1") == _rating(1)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "memory"])
async def test_an_accepted_replacement_goes_through_the_deletion_log(
    kind: str, tmp_path: Path
) -> None:
    """save_accepted(replace=True) replaces, unless a later deletion withdraws it."""
    async with _store(kind, tmp_path) as store:
        assert (await store.save_many([_rating(1), _rating(2, "r2", session_id="s")])).is_ok()
        before = time.time()
        await store.delete(FeedbackFilter(session_id="s"))
        after = time.time()
        updated, late = _rating(4), _rating(5, "r2", session_id="s")
        result = await store.save_accepted([updated, late], [after, before], replace=True)
        assert result == Ok(["r2"])
        assert await store.get("r1") == updated
        assert await store.get("r2") is None
        assert (await store.aggregate()).average_rating == 4.0


@pytest.mark.postgres
async def test_concurrent_postgres_replacements_writes_and_deletions_do_not_deadlock() -> None:
    """Crossing updates, updates beside writers and deletions: no error, rollup exact."""
    at = NOW.replace(minute=5)

    def rated(score: int, item_id: str) -> FeedbackItem:
        return FeedbackItem(
            FeedbackType.RATING, score, {"owner_id": "u1", "model": "m"}, id=item_id, created_at=at
        )

    async with (
        fresh_schema() as schema,
        await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema, max_size=8) as store,
    ):
        results: list[Any] = []
        for n in range(12):
            x, y, z = f"x{n}", f"y{n}", f"z{n}"
            assert (await store.save_many([rated(5, x), rated(3, y), rated(4, z)])).is_ok()
            results += await asyncio.gather(
                store.replace_many([rated(3, x)]),  # its rollup rows cross the next one's
                store.replace_many([rated(5, y)]),
                store.save_many([rated(3, f"a{n}"), rated(5, f"b{n}")]),
                store.replace_many([rated(1, f"new{n}")]),  # never stored: both upsert it
                store.replace_many([rated(2, f"new{n}")]),
                store.delete(FeedbackFilter(item_id=z)),
            )
        errors = [r for r in results if not hasattr(r, "items") and r.is_err()]
        assert errors == []
        summary = await store.aggregate()
        assert summary.total_count == 12 * 5
        await store.rebuild_rollup()
        assert await store.aggregate() == summary
