"""
Statistics from the hourly rollup equal the same figures computed over the raw rows.

Random items over 40 days (models, providers and owners sometimes missing, every type,
ratings with fractions), then windows of every size and every filter, compared with
the raw-row queries (``STATS_SQL``, ``AGGREGATE_SQL``) at a fixed "now": after inserts,
after replays and repeated ids, after deletions, and after migrating an older database.
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import FeedbackFilter, FeedbackItem, FeedbackStats, FeedbackType
from ai_feedback.stores import sqlite as sqlite_store
from ai_feedback.stores._sqlite_schema import AGGREGATE_SQL, INSERT_SQL, STATS_SQL
from ai_feedback.stores.sqlite import SQLiteFeedbackStore, migrate

NOW = datetime(2026, 11, 30, 12, 34, 56, 789_012, tzinfo=UTC)
WINDOWS = [0.01, 0.5, 1, 7.25, 24, 24 * 7, 24 * 30, 24 * 365]
RATINGS = [1, 2, 3, 4, 5, 4.5, 3.7, 0.1]


def _items(n: int, seed: int = 7) -> list[FeedbackItem]:
    rng = random.Random(seed)  # noqa: S311 - test data
    items = []
    for i in range(n):
        kind = rng.choice(list(FeedbackType) + [FeedbackType.RATING] * 3)
        value: Any = {
            FeedbackType.RATING: rng.choice(RATINGS),
            FeedbackType.TEXT: "t",
            FeedbackType.CORRECTION: {"original": "a", "corrected": "b"},
            FeedbackType.LABEL: {"label": "l", "input": None},
        }[kind]
        context = {"session_id": f"s{i % 17}"}
        for key, choices in (
            ("model", ["m1", "m2", None]),
            ("provider", ["p1", None]),
            ("owner_id", ["o1", "o2", None]),
        ):
            choice = rng.choice(choices)
            if choice is not None:
                context[key] = choice
        created = NOW - timedelta(microseconds=rng.randrange(40 * 24 * 3600 * 1_000_000))
        items.append(FeedbackItem(kind, value, context=context, created_at=created))
    return items


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows end at NOW, for the store and for the reference alike."""
    monkeypatch.setattr(
        sqlite_store, "cutoff", lambda hours: (NOW - timedelta(hours=hours)).timestamp()
    )


def _filters() -> Iterator[dict[str, str]]:
    for model in (None, "m1"):
        for provider in (None, "p1"):
            for owner in (None, "o2"):
                yield {
                    k: v
                    for k, v in (("model", model), ("provider", provider), ("owner_id", owner))
                    if v
                }


async def _reference(
    store: SQLiteFeedbackStore, hours: float, **filters: str
) -> tuple[FeedbackStats, Any]:
    since = math.ceil((NOW - timedelta(hours=hours)).timestamp() * 1_000_000)
    key = ("model" in filters, "provider" in filters, "owner_id" in filters)
    params = [since, *(filters[k] for k in ("model", "provider", "owner_id") if k in filters)]
    rows = await store._fetch(STATS_SQL[key], params)
    stats = sqlite_store._stats(
        rows, window_hours=hours, model=filters.get("model"), provider=filters.get("provider")
    )
    [aggregate] = await store._fetch(AGGREGATE_SQL[key], params)
    return stats, aggregate


def _same(a: FeedbackStats, b: FeedbackStats) -> None:
    assert a.summary.total_count == b.summary.total_count
    assert a.summary.count_by_type == b.summary.count_by_type
    assert (a.summary.average_rating is None) == (b.summary.average_rating is None)
    if a.summary.average_rating is not None:
        assert math.isclose(a.summary.average_rating, b.summary.average_rating or 0, rel_tol=1e-12)
    assert (a.rating_count, a.rating_min, a.rating_max) == (
        b.rating_count,
        b.rating_min,
        b.rating_max,
    )
    assert a.rating_percentiles == b.rating_percentiles
    assert a.rating_distribution == b.rating_distribution
    assert a.by_model.keys() == b.by_model.keys()
    for name, row in a.by_model.items():
        other = b.by_model[name]
        assert row["count"] == other["count"]
        if row["average_rating"] is None:
            assert other["average_rating"] is None
        else:
            assert math.isclose(row["average_rating"], other["average_rating"], rel_tol=1e-12)


async def _check(store: SQLiteFeedbackStore) -> int:
    checked = 0
    for hours in WINDOWS:
        for filters in _filters():
            expected, (ratings, average, *_) = await _reference(store, hours, **filters)
            _same(await store.stats(window_hours=hours, **filters), expected)
            summary = await store.aggregate(window_hours=hours, **filters)
            assert summary.count_by_type == expected.summary.count_by_type
            assert summary.count_by_type["rating"] == ratings
            if average is not None:
                assert math.isclose(summary.average_rating or 0, average, rel_tol=1e-12)
            checked += 1
    return checked


@pytest.mark.usefixtures("fixed_now")
async def test_rollup_statistics_equal_the_raw_rows(tmp_path: Path) -> None:
    """Every window and filter agrees with the raw query, through replays and deletions."""
    async with await SQLiteFeedbackStore.open(tmp_path / "r.db") as store:
        items = _items(3000)
        for start in range(0, len(items), 250):
            assert (await store.save_many(items[start : start + 250])).is_ok()
        assert await _check(store) == len(WINDOWS) * 8

        # Replays, a single save of a stored item, and repeated ids change nothing.
        assert (await store.save_many(items[100:400] + items[100:110])).is_ok()
        assert (await store.save(items[5])).is_ok()
        fresh = _items(50, seed=99)
        assert (await store.save_many(fresh + fresh[:5] + items[:20])).is_ok()
        await _check(store)

        # Deletions by session, by owner and in retention batches keep the rollup exact.
        await store.delete(FeedbackFilter(session_id="s3"))
        await store.delete(FeedbackFilter(owner_id="o1", model="m2"))
        await store.delete(FeedbackFilter(until=NOW - timedelta(days=20)), limit=400)
        await _check(store)
        rollup = await store._fetch("SELECT count(*) FROM feedback_rollup WHERE items <= 0", [])
        assert rollup == [(0,)]


@pytest.mark.usefixtures("fixed_now")
async def test_migrating_an_older_database_fills_the_rollup(tmp_path: Path) -> None:
    """A version-3 database with items gets its rollup built by the migration."""
    path = tmp_path / "old.db"
    assert await migrate(path, target=3) == 3
    rows = sqlite_store._encode(_items(800, seed=3))
    with sqlite3.connect(path) as db:
        db.executemany(INSERT_SQL, rows)
    async with await SQLiteFeedbackStore.open(path) as store:  # migrates to the latest
        await _check(store)
