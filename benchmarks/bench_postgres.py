"""
Benchmark the PostgreSQL store against the raw asyncpg driver, measured in the same run.

(a) Ingest: ``save_many`` in batches of 10,000 against asyncpg's fastest path,
    ``copy_records_to_table`` into an identical table (made by the same migrations in
    another schema: same columns, same indexes), one transaction per batch. The
    baseline's records are built before its clock starts and already hold the ``jsonb``
    columns as orjson-encoded JSON, so it times the COPY alone. The store's time covers
    everything ``save_many`` does: validating each item, encoding it (orjson), COPY into a
    staging table, ``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING``, commit. Building
    the FeedbackItems is outside both timings. Target: at least 0.5x the raw rate.
(b) ``aggregate(window_hours=24, model="model-3")`` on 1,000,000 rows (30 hours of
    feedback, 10 models, 3 providers, filled by COPY, then VACUUM ANALYZE) against the
    same SQL written by hand and run on a plain asyncpg connection. Target: at most 1.5x
    the hand-written query's time. ``stats()`` is timed the same way, for information.

Every figure is the median of 5 runs; ours and the baseline alternate. Each part uses its
own schema, dropped at the end. Run with ``uv run --no-sync python
benchmarks/bench_postgres.py [--quick] [--url URL]``; ``--quick`` shrinks the sizes
tenfold for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from _common import print_table, rate
from ai_feedback import FeedbackItem, FeedbackSummary, FeedbackType
from ai_feedback.stores import _pg_schema as pg_sql
from ai_feedback.stores._pg_schema import WRITE_COLUMNS
from ai_feedback.stores.postgres import AGGREGATE_SQL, STATS_SQL, PostgresFeedbackStore, migrate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
MODELS = tuple(f"model-{i}" for i in range(10))
PROVIDERS = ("openai", "anthropic", "local")
FILTER_MODEL = "model-3"
WINDOW_HOURS = 24
SPAN_HOURS = 30
REPEATS = 5
BATCH = 10_000
KINDS = (FeedbackType.RATING, FeedbackType.TEXT, FeedbackType.CORRECTION, FeedbackType.LABEL)
KIND_WEIGHTS = (50, 25, 15, 10)
HAND_WRITTEN_AGGREGATE = (
    "SELECT feedback_type, count(*), avg(rating) FROM feedback "
    "WHERE created_at >= $1 AND model = $2 GROUP BY feedback_type"
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
    target: str
    met: str


def ms(seconds: float) -> str:
    """
    Format a duration in milliseconds.
    """
    return f"{seconds * 1000:,.1f} ms"


def uuid7(at: datetime, rng: random.Random) -> str:
    """
    Return a version-7 UUID for the instant ``at`` (ids in time order, as new_id makes).
    """
    millis = int(at.timestamp() * 1000)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | rng.getrandbits(80)
    value = value & ~(0xF << 76) | (0x7 << 76)
    value = value & ~(0x3 << 62) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def random_value(kind: FeedbackType, rng: random.Random) -> Any:
    """
    Return a realistic value for ``kind``.
    """
    if kind is FeedbackType.RATING:
        return rng.randint(1, 5)
    if kind is FeedbackType.TEXT:
        return rng.choice(("great answer", "too long", "wrong language", "helpful"))
    if kind is FeedbackType.CORRECTION:
        return {"original": "the capital is Lyon", "corrected": "the capital is Paris"}
    return {"label": rng.choice(("positive", "negative")), "input": {"text": "classify this"}}


def generate(count: int, *, hours: float, seed: int) -> Iterator[tuple[Any, ...]]:
    """
    Yield ``count`` items as (kind, value, context, metadata, id, created_at), oldest first.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ages = sorted((rng.random() * hours for _ in range(count)), reverse=True)
    kinds = rng.choices(KINDS, weights=KIND_WEIGHTS, k=count)
    for i, (age, kind) in enumerate(zip(ages, kinds, strict=True)):
        created = now - timedelta(hours=age, seconds=1)
        context = {
            "trace_id": f"trace-{seed}-{i}",
            "session_id": f"session-{seed}-{i // 10}",
            "model": rng.choice(MODELS),
            "provider": rng.choice(PROVIDERS),
        }
        metadata = {"source": "bench", "widget": "stars"}
        yield kind, random_value(kind, rng), context, metadata, uuid7(created, rng), created


def record(generated: tuple[Any, ...]) -> tuple[Any, ...]:
    """
    Return the raw COPY record of one item, in ``WRITE_COLUMNS`` order, jsonb as orjson.
    """
    kind, value, context, metadata, item_id, created = generated
    return (
        item_id,
        kind.value,
        created,
        float(value) if kind is FeedbackType.RATING else None,
        context["trace_id"],
        context["session_id"],
        context["model"],
        context["provider"],
        None,
        orjson.dumps(value),
        orjson.dumps(context),
        orjson.dumps(metadata),
    )


async def raw_connection(url: str, schema: str) -> asyncpg.Connection[asyncpg.Record]:
    """
    Connect with ``search_path`` on ``schema``; jsonb travels as pre-encoded orjson bytes.
    """
    conn = await asyncpg.connect(url, server_settings={"search_path": f'"{schema}"'})
    await conn.set_type_codec(  # the JSON columns are json since schema version 3
        "json",
        schema="pg_catalog",
        encoder=lambda data: data,
        decoder=orjson.loads,
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda data: b"\x01" + data,
        decoder=lambda data: orjson.loads(data[1:]),
        format="binary",
    )
    return conn


async def timed(fn: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    """
    Await ``fn()``; return the seconds it took and its result.
    """
    start = time.perf_counter()
    result = await fn()
    return time.perf_counter() - start, result


# ---------------------------------------------------------------------------- (a) ingest


async def bench_ingest(url: str, count: int) -> list[Row]:
    """
    Compare save_many with COPY of pre-built records into an identical table.
    """
    print(f"\n(a) ingest {count:,} items in batches of {BATCH:,}, median of {REPEATS} runs")
    ours_schema, raw_schema = (f"bench_{secrets.token_hex(4)}_{n}" for n in ("ours", "raw"))
    generated = list(generate(count, hours=1, seed=1))
    items = [
        FeedbackItem(
            feedback_type=kind, value=value, context=context, metadata=meta, id=i, created_at=at
        )
        for kind, value, context, meta, i, at in generated
    ]
    records = [record(g) for g in generated]
    batches = [items[i : i + BATCH] for i in range(0, count, BATCH)]
    record_batches = [records[i : i + BATCH] for i in range(0, count, BATCH)]
    await migrate(url, schema=raw_schema)
    store = await PostgresFeedbackStore.open(url, schema=ours_schema)
    raw = await raw_connection(url, raw_schema)
    admin = await raw_connection(url, ours_schema)

    async def ours() -> None:
        for batch in batches:
            (await store.save_many(batch)).unwrap()

    async def baseline() -> None:
        for batch in record_batches:
            await raw.copy_records_to_table("feedback", records=batch, columns=WRITE_COLUMNS)

    times: dict[str, list[float]] = {"ours": [], "raw": []}
    schemas = {"ours": ours_schema, "raw": raw_schema}
    try:
        for run in range(REPEATS):
            order = [("ours", ours), ("raw", baseline)]
            for name, fn in order if run % 2 == 0 else order[::-1]:
                await admin.execute(f'TRUNCATE "{schemas[name]}".feedback')
                took, _ = await timed(fn)
                times[name].append(took)
            print(
                f"    run {run + 1}: ours {times['ours'][-1]:.2f} s, raw {times['raw'][-1]:.2f} s"
            )
        stored = await admin.fetchval(f'SELECT count(*) FROM "{ours_schema}".feedback')  # noqa: S608
        if stored != count:
            raise RuntimeError(f"the store holds {stored} rows, expected {count}")
        # Saving the same batch again stores nothing more (idempotent), for the record.
        again, _ = await timed(lambda: store.save_many(batches[0]))
        print(f"    save_many of an already stored batch of {BATCH:,}: {ms(again)}")
    finally:
        await store.aclose()
        await raw.close()
        for schema in (ours_schema, raw_schema):
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    ours_s, raw_s = statistics.median(times["ours"]), statistics.median(times["raw"])
    ratio = raw_s / ours_s
    print(
        f"    save_many: {rate(count, ours_s)}; raw COPY: {rate(count, raw_s)}; ratio {ratio:.2f}"
    )
    return [
        Row(
            f"ingest {count:,} (save_many vs raw COPY)",
            rate(count, ours_s),
            rate(count, raw_s),
            f"{ratio:.2f}x raw rate",
            ">= 0.50x",
            "yes" if ratio >= 0.5 else "NO",
        )
    ]


# ------------------------------------------------------------------------- (b) aggregate


async def fill(conn: asyncpg.Connection[asyncpg.Record], count: int) -> float:
    """
    COPY ``count`` rows spread over `SPAN_HOURS` into ``feedback``; return the seconds.
    """
    start = time.perf_counter()
    chunk: list[tuple[Any, ...]] = []
    for generated in generate(count, hours=SPAN_HOURS, seed=2):
        chunk.append(record(generated))
        if len(chunk) == 50_000:
            await conn.copy_records_to_table("feedback", records=chunk, columns=WRITE_COLUMNS)
            chunk = []
    if chunk:
        await conn.copy_records_to_table("feedback", records=chunk, columns=WRITE_COLUMNS)
    return time.perf_counter() - start


async def median_pair(
    ours: Callable[[], Awaitable[object]], baseline: Callable[[], Awaitable[object]]
) -> tuple[float, float, object, object]:
    """
    Time both functions `REPEATS` times, alternating, after one warm-up call each.
    """
    ours_result, base_result = await ours(), await baseline()
    ours_times: list[float] = []
    base_times: list[float] = []
    for run in range(REPEATS):
        pair = [(ours, ours_times), (baseline, base_times)]
        for fn, times in pair if run % 2 == 0 else pair[::-1]:
            took, _ = await timed(fn)
            times.append(took)
    return statistics.median(ours_times), statistics.median(base_times), ours_result, base_result


async def bench_aggregate(url: str, count: int) -> list[Row]:
    """
    Compare aggregate (and stats) with the same SQL run by hand on 1M rows.
    """
    print(f"\n(b) aggregate/stats over {count:,} rows ({SPAN_HOURS} h, {len(MODELS)} models)")
    schema = f"bench_{secrets.token_hex(4)}_agg"
    await migrate(url, schema=schema)
    conn = await raw_connection(url, schema)
    store: PostgresFeedbackStore | None = None
    try:
        took = await fill(conn, count)
        print(f"    filled by COPY in {took:.1f} s ({rate(count, took)})")
        # Rows copied behind the store's back: build their statistics rollup as a
        # migration would.
        rollup = pg_sql.ROLLUP_OF_ITEMS_SQL.format(items="feedback")
        await conn.execute(f"INSERT INTO feedback_rollup {rollup}")
        took, _ = await timed(lambda: conn.execute("VACUUM ANALYZE feedback"))
        print(f"    VACUUM ANALYZE in {took:.1f} s")
        store = await PostgresFeedbackStore.open(url, schema=schema)
        since = datetime.now(UTC) - timedelta(hours=WINDOW_HOURS)
        plan = await conn.fetch(
            "EXPLAIN " + AGGREGATE_SQL[True, False, False, False], since, FILTER_MODEL
        )
        scan = next(r[0].strip().lstrip("-> ") for r in plan if "Scan" in r[0])
        print(f"    plan of aggregate(model=...): {scan}")

        async def by_hand() -> list[asyncpg.Record]:
            start = datetime.now(UTC) - timedelta(hours=WINDOW_HOURS)
            return await conn.fetch(HAND_WRITTEN_AGGREGATE, start, FILTER_MODEL)

        def ours() -> Awaitable[FeedbackSummary]:
            return store.aggregate(window_hours=WINDOW_HOURS, model=FILTER_MODEL)

        ours_s, base_s, summary, rows = await median_pair(ours, by_hand)
        if not isinstance(summary, FeedbackSummary) or not isinstance(rows, list):
            raise TypeError((summary, rows))
        expected = {kind: n for kind, n, _ in rows}
        if {k: v for k, v in summary.count_by_type.items() if v} != expected:
            raise RuntimeError(f"aggregate {summary.count_by_type} != by hand {expected}")
        print(
            f"    aggregate(24h, model={FILTER_MODEL!r}): {summary.total_count:,} items; "
            f"ours {ms(ours_s)}, by hand {ms(base_s)}"
        )

        async def stats_by_hand() -> list[asyncpg.Record]:
            start = datetime.now(UTC) - timedelta(hours=WINDOW_HOURS)
            return await conn.fetch(STATS_SQL[False, False, False, False], start)

        stats_s, stats_base_s, _, _ = await median_pair(
            lambda: store.stats(window_hours=WINDOW_HOURS), stats_by_hand
        )
        print(f"    stats(24h): ours {ms(stats_s)}, its SQL by hand {ms(stats_base_s)}")
        filtered_s, filtered_base_s, _, _ = await median_pair(
            lambda: store.stats(window_hours=WINDOW_HOURS, model=FILTER_MODEL),
            lambda: conn.fetch(
                STATS_SQL[True, False, False, False],
                datetime.now(UTC) - timedelta(hours=WINDOW_HOURS),
                FILTER_MODEL,
            ),
        )
        print(
            f"    stats(24h, model={FILTER_MODEL!r}): ours {ms(filtered_s)}, "
            f"by hand {ms(filtered_base_s)}"
        )
    finally:
        if store is not None:
            await store.aclose()
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    ratio = ours_s / base_s
    return [
        Row(
            f"aggregate(24h, model) at {count:,} rows",
            ms(ours_s),
            ms(base_s),
            f"{ratio:.2f}x hand-written time",
            "<= 1.50x",
            "yes" if ratio <= 1.5 else "NO",
        ),
        Row(
            f"stats(24h) at {count:,} rows",
            ms(stats_s),
            ms(stats_base_s),
            f"{stats_s / stats_base_s:.2f}x its SQL by hand",
            "(info)",
            "-",
        ),
        Row(
            f"stats(24h, model) at {count:,} rows",
            ms(filtered_s),
            ms(filtered_base_s),
            f"{filtered_s / filtered_base_s:.2f}x its SQL by hand",
            "(info)",
            "-",
        ),
    ]


async def main() -> None:
    """
    Run both parts and print the summary.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="sizes shrunk tenfold")
    parser.add_argument("--url", default=os.environ.get("AI_FEEDBACK_BENCH_URL", DEFAULT_URL))
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    conn = await asyncpg.connect(args.url)
    version = await conn.fetchval("SHOW server_version")
    await conn.close()
    print(
        f"PostgreSQL {version}, asyncpg {asyncpg.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    start = time.perf_counter()
    rows = await bench_ingest(args.url, 200_000 // scale)
    rows += await bench_aggregate(args.url, 1_000_000 // scale)
    print_table(("measurement", "ours", "baseline", "ratio", "target", "met?"), rows)
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
