"""
Statistics from the hourly rollup against hand-written SQL over the raw rows, same run.

For SQLite and PostgreSQL: N items (10,000,000; 1,000,000 with --quick) spread over 30
days (5 models, 2 providers, 3 owners, 70% ratings) are generated in SQL, behind the
store's back, and the rollup is counted by ``store.rebuild_rollup()`` (its time is
printed). Then ``store.stats()`` and ``store.aggregate()``
for 24 hours and 30 days are timed against the raw-row queries the stores used before
(``STATS_SQL``, ``AGGREGATE_SQL``), alternating, 3 repetitions, min/median/max; the
results are checked equal. Target: >= 20x.

Ingest (measured first): 200,000 items saved with ``save_many`` in batches of 500, with
the rollup kept and with its maintenance switched off, alternating, 5 repetitions.
Target: the rollup costs at most 15% of the ingest rate.

Run with ``uv run --no-sync python benchmarks/bench_rollup.py [--quick]`` (PostgreSQL at
``AI_FEEDBACK_BENCH_POSTGRES_URL``, default the test server).
"""

from __future__ import annotations

import math
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from _common import print_table, run_hermetic
from ai_feedback import FeedbackType
from ai_feedback._models import new_id, trusted_item
from ai_feedback.stores import _pg_schema as pg_sql
from ai_feedback.stores import _sqlite_schema as sqlite_sql
from ai_feedback.stores import postgres as pg_store
from ai_feedback.stores import sqlite as sqlite_store

POSTGRES_URL = os.environ.get(
    "AI_FEEDBACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REPEATS = 3
SPAN_DAYS = 30
INGEST = 200_000
INGEST_REPEATS = 5  # ingest rates are noisier than query times here

_SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
INSERT INTO feedback (id, feedback_type, value, rating, context, metadata, session_id,
                      model, provider, owner_id, created_at)
SELECT printf('i%09d', i), CASE WHEN i % 10 < 7 THEN 'rating' ELSE 'text' END,
       CASE WHEN i % 10 < 7 THEN i % 5 + 1 ELSE '"t"' END,
       CASE WHEN i % 10 < 7 THEN i % 5 + 1 END, '{}', '{}', 's' || (i % 1000),
       'm' || (i % 5), 'p' || (i % 2), 'o' || (i % 3), ?2 - i * ?3
FROM n
"""
_POSTGRES_FILL = """
INSERT INTO feedback (id, feedback_type, created_at, rating, session_id, model, provider,
                      owner_id, value, context, metadata)
SELECT 'i' || lpad(i::text, 9, '0'), CASE WHEN i % 10 < 7 THEN 'rating' ELSE 'text' END,
       $2::timestamptz - i * $3::bigint * interval '1 microsecond',
       CASE WHEN i % 10 < 7 THEN i % 5 + 1 END, 's' || (i % 1000), 'm' || (i % 5),
       'p' || (i % 2), 'o' || (i % 3),
       CASE WHEN i % 10 < 7 THEN to_json(i % 5 + 1) ELSE '"t"'::json END, '{}', '{}'
FROM generate_series(0, $1 - 1) AS i
"""


@asynccontextmanager
async def _opened(kind: str) -> AsyncIterator[Any]:
    if kind == "sqlite":
        path = f"bench-rollup-{secrets.token_hex(4)}.db"
        async with await sqlite_store.SQLiteFeedbackStore.open(path) as store:
            yield store
        return
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        async with await pg_store.PostgresFeedbackStore.open(
            POSTGRES_URL, schema=schema, command_timeout=3600
        ) as store:
            yield store
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _fill(kind: str, store: Any, n: int) -> None:
    """
    Insert ``n`` rows with SQL (no rollup), then count the rollup with `rebuild_rollup`.
    """
    now = datetime.now(UTC)
    step = SPAN_DAYS * 24 * 3600 * 1_000_000 // n
    if kind == "sqlite":
        db = store._db
        micros = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        await db.execute("BEGIN IMMEDIATE")
        await db.execute(_SQLITE_FILL, (n, micros, step))
        await db.execute("COMMIT")
    else:
        async with store._pool.acquire() as conn:
            await conn.execute(_POSTGRES_FILL, n, now, step)
    started = time.perf_counter()
    counted = await store.rebuild_rollup()
    took = time.perf_counter() - started
    print(f"{kind}: rebuild_rollup() counted {counted:,} items in {took:.1f} s")
    if counted != n:
        msg = f"the rebuild counted {counted:,} of {n:,} items"
        raise RuntimeError(msg)
    if kind == "sqlite":
        await store._db.execute("ANALYZE")
    else:
        async with store._pool.acquire() as conn:
            await conn.execute("ANALYZE")


def _raw(kind: str, store: Any, what: str, hours: float) -> Callable[[], Awaitable[Any]]:
    """The hand-written query over the raw rows, as the stores ran it before the rollup."""
    key = (False, False, False, False)
    if kind == "sqlite":
        since = sqlite_store.cutoff(hours)
        query = (sqlite_sql.STATS_SQL if what == "stats" else sqlite_sql.AGGREGATE_SQL)[key]

        async def sqlite_raw() -> Any:
            rows = await store._fetch(query, [since])
            if what == "stats":
                return sqlite_store._stats(rows, window_hours=hours, model=None, provider=None)
            return rows[0][0]

        return sqlite_raw
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=pg_store.cutoff(hours))
    query = (pg_sql.STATS_SQL if what == "stats" else pg_sql.AGGREGATE_SQL)[key]

    async def postgres_raw() -> Any:
        rows = await store._fetch(query, start)
        if what == "stats":
            return pg_store._stats(rows, window_hours=hours, model=None, provider=None)
        return pg_store._summary(rows).count_by_type["rating"]

    return postgres_raw


def _ours(store: Any, what: str, hours: float) -> Callable[[], Awaitable[Any]]:
    async def ours() -> Any:
        if what == "stats":
            return await store.stats(window_hours=hours)
        return (await store.aggregate(window_hours=hours)).count_by_type["rating"]

    return ours


def _equal(a: Any, b: Any) -> bool:
    if not hasattr(a, "summary"):
        return bool(a == b)
    return (
        a.summary.count_by_type == b.summary.count_by_type
        and math.isclose(a.summary.average_rating or 0, b.summary.average_rating or 0)
        and a.rating_percentiles == b.rating_percentiles
        and a.rating_distribution == b.rating_distribution
        and {k: v["count"] for k, v in a.by_model.items()}
        == {k: v["count"] for k, v in b.by_model.items()}
    )


async def _timed(run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await run()
    return time.perf_counter() - started, result


def _spread(values: list[float], fmt: str) -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


async def _queries(kind: str, n: int) -> list[list[str]]:
    rows = []
    async with _opened(kind) as store:
        started = time.perf_counter()
        await _fill(kind, store, n)
        print(f"{kind}: {n:,} items and their rollup in {time.perf_counter() - started:.0f} s")
        # One fixed "now" for both sides, so that no item crosses a window edge between them.
        fixed = time.time_ns() // 1_000  # microseconds, as the stores' cutoff
        for module in (sqlite_store, pg_store):
            module.cutoff = lambda hours: fixed - round(hours * 3_600_000_000)  # type: ignore[attr-defined]
        for what in ("stats", "aggregate"):
            for hours in (24, 24 * SPAN_DAYS):
                ours_s, raw_s = [], []
                for _ in range(REPEATS):
                    raw_t, expected = await _timed(_raw(kind, store, what, hours))
                    ours_t, got = await _timed(_ours(store, what, hours))
                    if not _equal(got, expected):
                        raise SystemExit(f"{kind} {what} {hours} h: {got} != {expected}")
                    ours_s.append(ours_t * 1000)
                    raw_s.append(raw_t * 1000)
                ratio = [r / o for r, o in zip(raw_s, ours_s, strict=True)]
                label = f"{kind} {what}({hours:g} h)"
                print(
                    f"{label}: {_spread(ours_s, '{:.1f}')} ms vs raw {_spread(raw_s, '{:.0f}')} ms"
                )
                rows.append(
                    [
                        label,
                        f"{_spread(ours_s, '{:.1f}')} ms",
                        f"{_spread(raw_s, '{:.0f}')} ms",
                        _spread(ratio, "{:.0f}x"),
                        ">= 20x",
                        "ok" if statistics.median(ratio) >= 20 else "MISSED",
                    ]
                )
    return rows


def _batches() -> list[list[Any]]:
    base = datetime.now(UTC) - timedelta(days=SPAN_DAYS)
    return [
        [
            trusted_item(
                FeedbackType.RATING,
                i % 5 + 1,
                {"session_id": f"s{i % 1000}", "model": f"m{i % 5}", "owner_id": f"o{i % 3}"},
                {},
                new_id(),
                base + timedelta(seconds=i * 13),
            )
            for i in range(start, start + 500)
        ]
        for start in range(0, INGEST, 500)
    ]


async def _ingest_once(kind: str, *, rollup: bool) -> float:
    saved = sqlite_store._rollup, pg_sql.MERGE_STAGED_SQL
    if not rollup:  # the write path as it was before the rollup
        sqlite_store._rollup = lambda rows: []  # type: ignore[assignment]
        pg_sql.MERGE_STAGED_SQL = (
            pg_sql.MERGE_STAGED_SQL.split(" RETURNING")[0]  # noqa: S608 - our own SQL
            + " RETURNING 1) SELECT count(*) FROM inserted"
        )
    batches = _batches()
    try:
        async with _opened(kind) as store:
            started = time.perf_counter()
            for batch in batches:
                (await store.save_many(batch)).unwrap()
            return INGEST / (time.perf_counter() - started)
    finally:
        sqlite_store._rollup, pg_sql.MERGE_STAGED_SQL = saved


async def _ingest(kind: str) -> list[str]:
    plain, kept = [], []
    for _ in range(INGEST_REPEATS):
        plain.append(await _ingest_once(kind, rollup=False))
        kept.append(await _ingest_once(kind, rollup=True))
    ratio = [k / p for k, p in zip(kept, plain, strict=True)]
    print(
        f"{kind} ingest: {_spread(kept, '{:,.0f}')}/s with the rollup, "
        f"{_spread(plain, '{:,.0f}')}/s without"
    )
    return [
        f"{kind} save_many, batches of 500",
        f"{_spread(kept, '{:,.0f}')} items/s",
        f"{_spread(plain, '{:,.0f}')} items/s (no rollup)",
        _spread(ratio, "{:.2f}x"),
        ">= 0.85x",
        "ok" if statistics.median(ratio) >= 0.85 else "MISSED",
    ]


async def main(quick: bool) -> None:
    """
    Statistics over 10,000,000 items (1,000,000 with --quick), then ingest.
    """
    n = 1_000_000 if quick else 10_000_000
    rows = [await _ingest(kind) for kind in ("sqlite", "postgresql")]  # before the big files
    for kind in ("sqlite", "postgresql"):
        rows += await _queries(kind, n)
    header = ["measure", "rollup", "raw rows", "ratio", "target", "result"]
    print_table(header, rows)


if __name__ == "__main__":
    run_hermetic("bench_rollup", __doc__ or "", main)
