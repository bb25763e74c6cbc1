"""
Statistics from the hourly rollup equal the same figures computed over the raw rows.

Random items over 40 days (models, providers and owners sometimes missing, every type,
ratings with fractions), then windows of every size and every filter, compared with
the raw-row queries (``STATS_SQL``, ``AGGREGATE_SQL``) at a fixed "now": after inserts,
after replays and repeated ids, after deletions, and after migrating an older database.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ai_feedback import FeedbackFilter, FeedbackItem, FeedbackStats, FeedbackType
from ai_feedback.stores import _pg_schema as pg_sql
from ai_feedback.stores import _sqlite_schema as sqlite_sql
from ai_feedback.stores import postgres as pg_store
from ai_feedback.stores import sqlite as sqlite_store
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema

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
    for module in (sqlite_store, pg_store):
        monkeypatch.setattr(module, "cutoff", lambda hours: _micros(NOW - timedelta(hours=hours)))


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


FILTER_NAMES = ("model", "provider", "owner_id", "feedback_type")


def _filters() -> Iterator[dict[str, str]]:
    for model in (None, "m1"):
        for provider in (None, "p1"):
            for owner in (None, "o2"):
                for kind in (None, "rating", "text"):
                    given = zip(FILTER_NAMES, (model, provider, owner, kind), strict=True)
                    yield {k: v for k, v in given if v}


async def _reference(store: Any, hours: float, **filters: str) -> tuple[FeedbackStats, Any]:
    """The window's statistics and summary by the hand-written queries over the raw rows."""
    start = NOW - timedelta(hours=hours)
    key = tuple(name in filters for name in FILTER_NAMES)
    given = [filters[k] for k in FILTER_NAMES if k in filters]
    model, provider = filters.get("model"), filters.get("provider")
    if isinstance(store, SQLiteFeedbackStore):
        params = [_micros(start), *given]
        stats = sqlite_store._stats(
            await store._fetch(sqlite_sql.STATS_SQL[key], params),
            window_hours=hours,
            model=model,
            provider=provider,
        )
        [(ratings, average, *others)] = await store._fetch(sqlite_sql.AGGREGATE_SQL[key], params)
        counts = {"rating": ratings} | {
            t: int(n) for t, n in zip(sqlite_sql.OTHER_TYPES, others, strict=True)
        }
        return stats, (counts, average)
    params = [start, *given]
    stats = pg_store._stats(
        await store._fetch(pg_sql.STATS_SQL[key], *params),
        window_hours=hours,
        model=model,
        provider=provider,
    )
    summary = pg_store._summary(await store._fetch(pg_sql.AGGREGATE_SQL[key], *params))
    return stats, (summary.count_by_type, summary.average_rating)


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


async def _check(store: Any) -> int:
    checked = 0
    for hours in WINDOWS:
        for filters in _filters():
            expected, (counts, average) = await _reference(store, hours, **filters)
            _same(await store.stats(window_hours=hours, **filters), expected)
            summary = await store.aggregate(window_hours=hours, **filters)
            assert summary.count_by_type == expected.summary.count_by_type == counts
            assert (summary.average_rating is None) == (average is None)
            if average is not None:
                assert math.isclose(summary.average_rating or 0, average, rel_tol=1e-12)
            checked += 1
    return checked


@asynccontextmanager
async def _store(backend: str, tmp_path: Path, *, version: int | None = None) -> AsyncIterator[Any]:
    """A fresh store; with ``version``, first an older schema holding items saved raw."""
    old_items = _items(800, seed=3)
    if backend == "sqlite":
        path = tmp_path / "r.db"
        if version is not None:
            assert await sqlite_store.migrate(path, target=version) == version
            with sqlite3.connect(path) as db:
                db.executemany(sqlite_sql.INSERT_SQL, sqlite_store._encode(old_items))
        async with await SQLiteFeedbackStore.open(path) as store:
            yield store
        return
    async with fresh_schema() as schema:
        if version is not None:
            assert await pg_store.migrate(POSTGRES_URL, schema=schema, target=version) == version
            conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
            try:
                await pg_store._init_connection(conn)
                await conn.executemany(pg_sql.INSERT_SQL, pg_store._encode(old_items))
            finally:
                await conn.close()
        async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
            yield store


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.usefixtures("fixed_now")
@pytest.mark.parametrize("backend", BACKENDS)
async def test_rollup_statistics_equal_the_raw_rows(backend: str, tmp_path: Path) -> None:
    """Every window and filter agrees with the raw query, through replays and deletions."""
    async with _store(backend, tmp_path) as store:
        items = _items(3000)
        for start in range(0, len(items), 250):
            assert (await store.save_many(items[start : start + 250])).is_ok()
        assert await _check(store) == len(WINDOWS) * 24

        # Replays, a single save of a stored item, and repeated ids change nothing.
        assert (await store.save_many(items[100:400] + items[100:110])).is_ok()
        assert (await store.save(items[5])).is_ok()
        fresh = _items(50, seed=99)
        assert (await store.save_many(fresh + fresh[:5] + items[:20])).is_ok()
        assert (await store.save(_items(1, seed=5)[0])).is_ok()
        await _check(store)

        # Deletions by session, by owner and in retention batches keep the rollup exact.
        await store.delete(FeedbackFilter(session_id="s3"))
        await store.delete(FeedbackFilter(owner_id="o1", model="m2"))
        await store.delete(FeedbackFilter(until=NOW - timedelta(days=20)), limit=400)
        await _check(store)
        empty = await store._fetch(
            "SELECT count(*) FROM feedback_rollup WHERE items <= 0",
            *([[]] if backend == "sqlite" else []),
        )
        assert empty[0][0] == 0


@pytest.mark.usefixtures("fixed_now")
@pytest.mark.parametrize(
    ("backend", "version"),
    [("sqlite", 3), pytest.param("postgresql", 4, marks=pytest.mark.postgres)],
)
async def test_migrating_an_older_database_fills_the_rollup(
    backend: str, version: int, tmp_path: Path
) -> None:
    """A database from before the rollup, with items, gets its rollup built by the migration."""
    async with _store(backend, tmp_path, version=version) as store:
        await _check(store)
        assert (await store.stats(window_hours=24 * 365)).summary.total_count == 800


async def _load_behind_the_back(store: Any, items: list[FeedbackItem]) -> None:
    """Insert rows into the feedback table with SQL, as a bulk load would: no rollup."""
    if isinstance(store, SQLiteFeedbackStore):
        with sqlite3.connect(store._path) as db:
            db.executemany(sqlite_sql.INSERT_SQL, sqlite_store._encode(items))
        return
    async with store._connection("load") as conn:
        await conn.executemany(pg_sql.INSERT_SQL, pg_store._encode(items))


@pytest.mark.usefixtures("fixed_now")
@pytest.mark.parametrize("backend", BACKENDS)
async def test_rebuilding_counts_rows_loaded_behind_the_stores_back(
    backend: str, tmp_path: Path
) -> None:
    """Rows inserted with SQL are missing from the rollup until rebuild_rollup counts them."""
    async with _store(backend, tmp_path) as store:
        assert (await store.save_many(_items(600))).is_ok()
        await store.delete(FeedbackFilter(session_id="s3"))
        stored = (await store.stats(window_hours=24 * 365)).summary.total_count
        await _load_behind_the_back(store, _items(400, seed=11))
        assert (await store.stats(window_hours=24 * 365)).summary.total_count == stored

        assert await store.rebuild_rollup() == stored + 400
        assert (await store.stats(window_hours=24 * 365)).summary.total_count == stored + 400
        assert await _check(store) == len(WINDOWS) * 24
        # Rebuilding again changes nothing; later writes and deletions count on top of it.
        assert await store.rebuild_rollup() == stored + 400
        assert (await store.save_many(_items(30, seed=12))).is_ok()
        await store.delete(FeedbackFilter(owner_id="o2"))
        await _check(store)


@pytest.mark.usefixtures("fixed_now")
@pytest.mark.parametrize("backend", BACKENDS)
async def test_rebuilds_and_writes_at_the_same_time_stay_exact(
    backend: str, tmp_path: Path
) -> None:
    """Two rebuilds at once, and writes and deletions meanwhile, leave the rollup exact."""
    async with _store(backend, tmp_path) as store:
        assert (await store.save_many(_items(500))).is_ok()
        await _load_behind_the_back(store, _items(300, seed=21))
        more = _items(200, seed=22)

        async def write() -> None:
            for start in range(0, len(more), 50):
                assert (await store.save_many(more[start : start + 50])).is_ok()
            await store.delete(FeedbackFilter(session_id="s5"))

        await asyncio.gather(store.rebuild_rollup(), store.rebuild_rollup(), write())
        assert await _check(store) == len(WINDOWS) * 24


@pytest.mark.parametrize("minute", [0, 1, 29, 30, 31, 59])
def test_a_window_reads_at_most_half_an_hour_of_items(
    minute: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partial first hour is added or subtracted, whichever is the shorter range."""
    start = datetime(2026, 11, 30, 12, minute, 17, tzinfo=UTC)
    for module in (sqlite_store, pg_store):
        monkeypatch.setattr(module, "cutoff", lambda hours: _micros(start))
    queries = dict.fromkeys(pg_sql.ROLLUP_AGGREGATE_SQL, "")
    _, params = sqlite_store._window_query(queries, 24, None, None, None, None)
    *_, sign, low, high = params  # the rollup's first hour (twice), the items' sign and range
    assert 0 <= high - low <= 30 * 60 * 1_000_000
    assert sign == (-1 if minute < 30 else 1)
    _, params_pg = pg_store._window_query(queries, 24, None, None, None, None)
    low_pg, _, high_pg, sign_pg = params_pg
    assert timedelta(0) <= high_pg - low_pg <= timedelta(minutes=30)
    assert sign_pg == sign
