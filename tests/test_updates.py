"""
Updates through the collector: ``submit_payload(..., replace=True)`` and batches of them.

In every mode (durable spool, queued, sync) the update replaces the item under its id,
and an update never takes another owner's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConflictError,
    FeedbackItem,
    FeedbackType,
)
from ai_feedback._models import Entry
from ai_feedback.spool._base import decode_entry, encode_entry
from ai_feedback.stores.sqlite import SQLiteFeedbackStore

MODES = [
    {"ack": "durable"},
    {"ack": "queued"},
    {"async_processing": False},
]


def _config(mode: dict[str, Any], tmp_path: Path) -> FeedbackConfig:
    if mode.get("ack") == "durable":
        return FeedbackConfig(spool_url=f"sqlite:///{tmp_path}/u.spool", **mode)
    return FeedbackConfig(**mode)


def _score(value: float, owner: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"id": "s1", "score": value, "context": {"owner_id": owner}, **extra}


@pytest.mark.parametrize("mode", MODES, ids=["durable", "queued", "sync"])
async def test_an_update_replaces_the_item_in_every_mode(
    mode: dict[str, Any], tmp_path: Path
) -> None:
    """The first payload creates, the update replaces; statistics follow the update."""
    config = _config(mode, tmp_path)
    async with await SQLiteFeedbackStore.open(tmp_path / "u.db") as store:
        collector = FeedbackCollector(store, config)
        await collector.start()
        try:
            assert await collector.submit_payload(_score(1)) == "s1"
            await collector.flush()
            assert await collector.submit_payload(_score(5), replace=True) == "s1"
            await collector.flush()
            stored = await store.get("s1")
            assert stored is not None
            assert stored.value == 5
            stats = await collector.get_feedback_stats()
            assert (stats["total_count"], stats["average_rating"]) == (1, 5.0)
        finally:
            await collector.aclose()


@pytest.mark.parametrize("mode", MODES, ids=["durable", "queued", "sync"])
async def test_the_last_update_of_a_batch_wins(mode: dict[str, Any], tmp_path: Path) -> None:
    """Several updates of one id in one batch: each is acknowledged, the last is stored."""
    config = _config(mode, tmp_path)
    async with await SQLiteFeedbackStore.open(tmp_path / "u.db") as store:
        collector = FeedbackCollector(store, config)
        await collector.start()
        try:
            results = await collector.submit_payloads(
                [_score(1), _score(2), {"id": "other", "score": 3}, _score(4)], replace=True
            )
            assert results == ["s1", "s1", "other", "s1"]
            await collector.flush()
            stored = await store.get("s1")
            assert stored is not None
            assert stored.value == 4
            assert (await store.aggregate()).total_count == 2
        finally:
            await collector.aclose()


async def test_an_update_of_another_owners_item_is_refused(tmp_path: Path) -> None:
    """Sync mode raises the conflict; async mode sets the update aside (failures)."""
    async with await SQLiteFeedbackStore.open(tmp_path / "u.db") as store:
        sync = FeedbackCollector(store, FeedbackConfig(async_processing=False))
        await sync.submit_payload(_score(1, owner="u1"))
        with pytest.raises(FeedbackConflictError):
            await sync.submit_payload(_score(5, owner="u2"), replace=True)
        queued = FeedbackCollector(store, FeedbackConfig(ack="queued"))
        await queued.start()
        try:
            await queued.submit_payload(_score(5, owner="u2"), replace=True)
            await queued.flush()
            assert len(queued.failures) == 1
        finally:
            await queued.aclose()
        stored = await store.get("s1")
        assert stored is not None
        assert (stored.value, stored.owner_id) == (1, "u1")


def test_a_spooled_update_stays_an_update() -> None:
    """The spool's encoding keeps the flag (a replayed update is still an update)."""
    item = FeedbackItem(FeedbackType.RATING, 3, id="s1")
    for replace in (False, True):
        entry, _ = decode_entry(encode_entry(Entry(item, "rating", replace=replace)))
        assert entry.replace is replace
    old_entry = encode_entry(Entry(item, "rating")).replace(b',"u":true', b"")
    assert decode_entry(old_entry)[0].replace is False


async def test_superseded_updates_share_the_outcome_of_the_last(tmp_path: Path) -> None:
    """Sync mode: an update refused as a conflict is refused for every copy in the batch."""
    async with await SQLiteFeedbackStore.open(tmp_path / "u.db") as store:
        sync = FeedbackCollector(store, FeedbackConfig(async_processing=False))
        await sync.submit_payload(_score(1, owner="u1"))
        results = await sync.submit_payloads(
            [_score(2, owner="u2"), _score(3, owner="u2")], replace=True
        )
        assert all(isinstance(r, FeedbackConflictError) for r in results)


@pytest.mark.redis
async def test_a_cache_over_a_store_without_replace_writes_updates_as_new(
    tmp_path: Path,
) -> None:
    """New ids are stored; a changed one is a conflict (as with any store that cannot)."""
    from ai_feedback.stores.cached import CachedFeedbackStore  # noqa: PLC0415
    from tests.fakes import WrappedStore  # noqa: PLC0415
    from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix  # noqa: PLC0415

    prefix = unique_prefix()
    inner = WrappedStore()  # a memory store behind methods without replace_many
    try:
        async with CachedFeedbackStore(inner, REDIS_URL, prefix=prefix) as store:  # type: ignore[arg-type]
            item = FeedbackItem(FeedbackType.RATING, 1, id="s1")
            assert (await store.replace_many([item])).is_ok()
            changed = FeedbackItem(FeedbackType.RATING, 5, id="s1")
            assert isinstance(
                (await store.replace_many([changed])).unwrap_err(), FeedbackConflictError
            )
    finally:
        await delete_keys(prefix)
