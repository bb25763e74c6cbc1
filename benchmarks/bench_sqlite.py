"""
Benchmark the SQLite store against the raw driver (stdlib ``sqlite3``) in the same run.

Each figure is the median of 5 runs, printed with its baseline and their ratio:

1. Ingest: ``save_many`` in batches of 1,000 and 10,000 (200,000 items per run) against
   the driver's best path on an identical schema: per batch, build the row tuples from the
   same FeedbackItems (orjson for value, context and metadata, as the store does), then
   ``BEGIN IMMEDIATE`` + ``executemany`` + ``COMMIT``. Both write fresh files with the
   store's PRAGMAs (WAL, synchronous=NORMAL). Target: at least 0.5x the driver's rate.
2. ``aggregate(window_hours=24, model="model-3")`` on 1,000,000 rows against the same SQL
   written by hand through ``sqlite3`` on the same file. Target: at most 1.5x its time.
   ``stats()`` (filtered and not) and one point read (``get``) are reported the same way.

Run with ``uv run --no-sync python benchmarks/bench_sqlite.py [--quick]``; ``--quick``
shrinks every size tenfold for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from _common import print_table, rate
from ai_feedback import FeedbackItem, FeedbackSummary, FeedbackType
from ai_feedback._models import new_id
from ai_feedback.stores.sqlite import PRAGMAS, STATS_SQL, SQLiteFeedbackStore, migrate

MODELS = tuple(f"model-{i}" for i in range(10))
PROVIDERS = ("openai", "anthropic", "local")
FILTER_MODEL = "model-3"
WINDOW_HOURS = 24
SPAN_HOURS = 30
REPEATS = 5
FILL_BATCH = 10_000
KINDS = (
    (FeedbackType.RATING,) * 5
    + (FeedbackType.TEXT,) * 2
    + (FeedbackType.CORRECTION, FeedbackType.CORRECTION, FeedbackType.LABEL)
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

# The baseline's SQL, written by hand (not imported from the store).
INSERT_SQL = (
    "INSERT INTO feedback (id, feedback_type, value, rating, context, metadata, trace_id, "
    "session_id, model, provider, owner_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
AGGREGATE_BY_MODEL_SQL = (
    "SELECT count(rating), avg(rating), total(feedback_type = 'text'), "
    "total(feedback_type = 'correction'), total(feedback_type = 'label') "
    "FROM feedback WHERE created_at >= ? AND model = ?"
)
GET_SQL = (
    "SELECT id, feedback_type, value, context, metadata, created_at FROM feedback WHERE id = ?"
)


@dataclass(frozen=True, slots=True)
class Row:
    """
    One line of the summary table.
    """

    name: str
    ours: str
    baseline: str
    ratio: str
    target: str = "-"
    met: str = "-"


# --------------------------------------------------------------------------- helpers


def ms(seconds: float) -> str:
    """
    Format a duration in milliseconds.
    """
    return f"{seconds * 1000:,.2f} ms"


def connect(path: Path) -> sqlite3.Connection:
    """
    Open a stdlib connection with the store's PRAGMAs and explicit transactions.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def remove_database(path: Path) -> None:
    """
    Delete a database file and its WAL companions.
    """
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def count_rows(path: Path) -> int:
    """
    Return the number of rows in the feedback table.
    """
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM feedback").fetchone()[0])
    finally:
        conn.close()


def value_for(kind: FeedbackType, rng: random.Random) -> Any:
    """
    Return a typical value for ``kind``.
    """
    if kind is FeedbackType.RATING:
        return rng.randint(2, 10) / 2
    if kind is FeedbackType.TEXT:
        return rng.choice(("great answer", "too long", "wrong language", "helpful"))
    if kind is FeedbackType.CORRECTION:
        return {"original": "the capital is Lyon", "corrected": "the capital is Paris"}
    return {"label": rng.choice(("positive", "negative")), "input": {"text": "classify me"}}


def context_for(i: int, rng: random.Random) -> dict[str, Any]:
    """
    Return a context: a random trace id, a session among ~100 active ones, model, provider.
    """
    return {
        "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "session_id": f"session-{rng.randrange(max(0, i // 10 - 100), i // 10 + 1)}",
        "model": rng.choice(MODELS),
        "provider": rng.choice(PROVIDERS),
    }


def build_items(count: int, seed: int) -> list[FeedbackItem]:
    """
    Build ``count`` validated items created in the last minute, oldest first.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    items = []
    for i in range(count):
        kind = rng.choice(KINDS)
        items.append(
            FeedbackItem(
                feedback_type=kind,
                value=value_for(kind, rng),
                context=context_for(i, rng),
                metadata={"source": "bench"},
                created_at=now - timedelta(seconds=60 * (1 - i / count)),
            )
        )
    return items


def fast_item(
    kind: FeedbackType, value: Any, context: dict[str, Any], created: datetime
) -> FeedbackItem:
    """
    Build an item without validation, as the store's read path does (for the 1M fill).
    """
    item = object.__new__(FeedbackItem)
    for name, field_value in (
        ("feedback_type", kind),
        ("value", value),
        ("context", context),
        ("metadata", {"source": "bench"}),
        ("id", new_id()),
        ("created_at", created),
    ):
        object.__setattr__(item, name, field_value)
    return item


def encode_rows(items: Sequence[FeedbackItem]) -> list[tuple[Any, ...]]:
    """
    Build the baseline's row tuples: the same columns and orjson encoding as the store.
    """
    rows = []
    for item in items:
        context = item.context
        value = item.value
        kind = item.feedback_type.value
        rows.append(
            (
                item.id,
                kind,
                orjson.dumps(value).decode(),
                float(value) if kind == "rating" else None,
                orjson.dumps(context).decode(),
                orjson.dumps(item.metadata).decode(),
                context.get("trace_id"),
                context.get("session_id"),
                context.get("model"),
                context.get("provider"),
                context.get("owner_id"),
                (item.created_at - EPOCH) // MICROSECOND,
            )
        )
    return rows


async def median_pair(
    ours: Callable[[], Awaitable[object]], baseline: Callable[[], object]
) -> tuple[float, float, object, object]:
    """
    Time both callables ``REPEATS`` times after one warm-up, alternating who goes first.
    """
    result_ours, result_base = await ours(), baseline()
    times_ours, times_base = [], []
    for run in range(REPEATS):
        for side in ("ours", "base") if run % 2 == 0 else ("base", "ours"):
            start = time.perf_counter()
            if side == "ours":
                result_ours = await ours()
                times_ours.append(time.perf_counter() - start)
            else:
                result_base = baseline()
                times_base.append(time.perf_counter() - start)
    return statistics.median(times_ours), statistics.median(times_base), result_ours, result_base


# ---------------------------------------------------------------------------- ingest


async def ingest_ours(path: Path, items: Sequence[FeedbackItem], batch: int) -> float:
    """
    Write ``items`` with ``save_many`` into a fresh store; return the seconds taken.
    """
    async with await SQLiteFeedbackStore.open(path) as store:
        gc.collect()
        start = time.perf_counter()
        for offset in range(0, len(items), batch):
            result = await store.save_many(items[offset : offset + batch])
            if result.is_err():
                raise RuntimeError(f"save_many failed: {result.unwrap_err()}")
        return time.perf_counter() - start


async def ingest_driver(path: Path, items: Sequence[FeedbackItem], batch: int) -> float:
    """
    Write ``items`` through stdlib sqlite3 into a fresh file with the store's schema.
    """
    await migrate(path)
    conn = connect(path)
    try:
        gc.collect()
        start = time.perf_counter()
        for offset in range(0, len(items), batch):
            rows = encode_rows(items[offset : offset + batch])
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, rows)
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


async def bench_ingest(count: int, folder: Path) -> list[Row]:
    """
    Measure save_many against the raw driver for each batch size.
    """
    print(f"\n[1] ingest {count:,} items per run, median of {REPEATS} runs, fresh files")
    print(
        "    baseline = stdlib sqlite3, same schema and PRAGMAs; per batch: row tuples built\n"
        "    from the same FeedbackItems with orjson (value, context, metadata) + BEGIN\n"
        "    IMMEDIATE + executemany + COMMIT. Not in the baseline: the store's validation\n"
        "    (check_item: size limits), its lock and the aiosqlite thread hops."
    )
    items = build_items(count, seed=1)
    encoding = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        encode_rows(items)
        encoding.append(time.perf_counter() - start)
    encode_s = statistics.median(encoding)
    print(f"    row encoding alone (orjson, in both sides): {rate(count, encode_s)}")
    rows = []
    for batch in (1_000, 10_000):
        times: dict[str, list[float]] = {"ours": [], "base": []}
        for run in range(REPEATS):
            for side in ("ours", "base") if run % 2 == 0 else ("base", "ours"):
                path = folder / f"ingest-{side}.db"
                remove_database(path)
                if side == "ours":
                    took = await ingest_ours(path, items, batch)
                else:
                    took = await ingest_driver(path, items, batch)
                if count_rows(path) != count:
                    raise RuntimeError(f"{side}: {count_rows(path)} rows, expected {count}")
                remove_database(path)
                times[side].append(took)
        ours, base = statistics.median(times["ours"]), statistics.median(times["base"])
        ratio = base / ours
        print(
            f"    batch {batch:>6,}: save_many {rate(count, ours)}, baseline {rate(count, base)}"
            f" (encoding is {encode_s / base:.0%} of its time); ours = {ratio:.2f}x its rate"
        )
        rows.append(
            Row(
                f"save_many, batches of {batch:,}",
                rate(count, ours),
                rate(count, base),
                f"{ratio:.2f}x of raw rate",
                ">= 0.5x",
                "yes" if ratio >= 0.5 else "NO",
            )
        )
    return rows


# ------------------------------------------------------------------------- 1M queries


async def fill(store: SQLiteFeedbackStore, count: int) -> float:
    """
    Fill ``store`` with ``count`` items spread over `SPAN_HOURS`, oldest first.
    """
    rng = random.Random(2)
    now = datetime.now(UTC)
    saving = 0.0
    for offset in range(0, count, FILL_BATCH):
        batch = []
        for i in range(offset, min(count, offset + FILL_BATCH)):
            kind = rng.choice(KINDS)
            age = timedelta(hours=SPAN_HOURS * (1 - i / count))
            batch.append(fast_item(kind, value_for(kind, rng), context_for(i, rng), now - age))
        start = time.perf_counter()
        result = await store.save_many(batch)
        saving += time.perf_counter() - start
        if result.is_err():
            raise RuntimeError(f"save_many failed: {result.unwrap_err()}")
    return saving


def cutoff_us() -> int:
    """
    Return the start of the window in microseconds since the epoch.
    """
    return (datetime.now(UTC) - timedelta(hours=WINDOW_HOURS) - EPOCH) // MICROSECOND


async def bench_queries(count: int, folder: Path) -> list[Row]:
    """
    Measure aggregate, stats and get on ``count`` rows against hand-run SQL.
    """
    print(f"\n[2] queries on {count:,} rows (same file for both sides), median of {REPEATS}")
    path = folder / "queries.db"
    rows: list[Row] = []
    async with await SQLiteFeedbackStore.open(path) as store:
        saving = await fill(store, count)
        print(f"    fill: save_many in batches of {FILL_BATCH:,}: {rate(count, saving)}")
        conn = connect(path)
        try:
            rows += await compare_aggregate(store, conn)
            rows += await compare_stats(store, conn)
            rows += await compare_get(store, conn)
        finally:
            conn.close()
    print(f"    database size: {path.stat().st_size / 1e6:,.0f} MB")
    return rows


async def compare_aggregate(store: SQLiteFeedbackStore, conn: sqlite3.Connection) -> list[Row]:
    """
    Compare aggregate(24 h, model) with the same SQL run by hand.
    """
    ours_s, base_s, summary, raw = await median_pair(
        lambda: store.aggregate(window_hours=WINDOW_HOURS, model=FILTER_MODEL),
        lambda: conn.execute(AGGREGATE_BY_MODEL_SQL, (cutoff_us(), FILTER_MODEL)).fetchone(),
    )
    if not isinstance(summary, FeedbackSummary) or not isinstance(raw, tuple):
        raise TypeError((summary, raw))
    if summary.count_by_type["rating"] != raw[0] or summary.total_count != raw[0] + sum(raw[2:]):
        raise RuntimeError(f"aggregate {summary} differs from the SQL's {raw}")
    ratio = ours_s / base_s
    print(
        f"    aggregate(24h, model={FILTER_MODEL!r}): {summary.total_count:,} items in window; "
        f"ours {ms(ours_s)}, by hand {ms(base_s)}; {ratio:.2f}x the time"
    )
    return [
        Row(
            f"aggregate(24h, model={FILTER_MODEL!r})",
            ms(ours_s),
            ms(base_s),
            f"{ratio:.2f}x the time",
            "<= 1.5x",
            "yes" if ratio <= 1.5 else "NO",
        )
    ]


async def compare_stats(store: SQLiteFeedbackStore, conn: sqlite3.Connection) -> list[Row]:
    """
    Compare stats() with running its SQL (the store's STATS_SQL) by hand, rows only.
    """
    rows = []
    for model in (FILTER_MODEL, None):
        params: tuple[Any, ...] = (cutoff_us(), model) if model else (cutoff_us(),)
        sql = STATS_SQL[model is not None, False, False, False]
        ours_s, base_s, stats, _ = await median_pair(
            lambda model=model: store.stats(window_hours=WINDOW_HOURS, model=model),
            lambda sql=sql, params=params: conn.execute(sql, params).fetchall(),
        )
        total = getattr(getattr(stats, "summary", None), "total_count", None)
        label = f"stats(24h{'' if model is None else f', model={model!r}'})"
        print(
            f"    {label}: {total:,} items; ours {ms(ours_s)}, "
            f"its SQL by hand {ms(base_s)}; {ours_s / base_s:.2f}x the time"
        )
        rows.append(Row(label, ms(ours_s), ms(base_s), f"{ours_s / base_s:.2f}x the time"))
    return rows


async def compare_get(store: SQLiteFeedbackStore, conn: sqlite3.Connection) -> list[Row]:
    """
    Compare get(id) with the same SELECT by hand: the per-call cost of the thread hop.
    """
    ids = [row[0] for row in conn.execute("SELECT id FROM feedback LIMIT 2000 OFFSET 5000")]

    async def ours() -> None:
        for item_id in ids:
            await store.get(item_id)

    def by_hand() -> None:
        for item_id in ids:
            conn.execute(GET_SQL, (item_id,)).fetchone()

    ours_s, base_s, _, _ = await median_pair(ours, by_hand)
    per_ours, per_base = ours_s / len(ids), base_s / len(ids)
    print(
        f"    get(id) x {len(ids):,}: ours {per_ours * 1e6:.1f} us/call, by hand "
        f"{per_base * 1e6:.1f} us/call (the difference is the aiosqlite hop + decoding)"
    )
    return [
        Row(
            "get(id), one point read",
            f"{per_ours * 1e6:.1f} us",
            f"{per_base * 1e6:.1f} us",
            f"{ours_s / base_s:.2f}x the time",
        )
    ]


# ------------------------------------------------------------------------------ main


async def run(quick: bool, folder: Path) -> None:
    """
    Run both benchmarks and print the summary table.
    """
    scale = 10 if quick else 1
    rows = await bench_ingest(200_000 // scale, folder)
    rows += await bench_queries(1_000_000 // scale, folder)
    print_table(("measurement", "ours", "baseline", "ratio", "target", "met?"), rows)


def main() -> None:
    """
    Parse the arguments and run the benchmark in a temporary directory.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="shrink sizes ~10x (smoke run)")
    args = parser.parse_args()
    print(
        f"bench_sqlite: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {aiosqlite.__version__}, {os.cpu_count()} CPU(s)"
        f"{', --quick' if args.quick else ''}; PRAGMAs: {'; '.join(PRAGMAS)}"
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.quick, Path(tmp)))
    print(f"\nWall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
