"""
What durable acknowledgement costs: ``ack: durable`` against ``ack: queued``, same run.

For SQLite and PostgreSQL stores, 64 concurrent submitters call ``submit_feedback``
until N items are submitted; the clock stops when every item is stored (``flush``).
With ``ack: durable`` each call returns once its item is fsync'd in the spool (SQLite
file, group commit); with ``ack: queued`` once it is in an in-memory queue. Printed: the
items/s to stored and the caller-side p50/p99 latency of both modes, the ratio
(target: durable >= 0.5x queued), and a single sequential submitter in both modes.

The database's own limit is measured alongside: the same rows (encoded beforehand) written
by hand in batches of 1,000 (the writer's batch size here), each batch committed, with
``sqlite3``'s ``executemany`` (WAL, ``synchronous=FULL``, as the store) and asyncpg's
``COPY`` into the same schema. Targets: durable with 64 submitters >= 0.6x raw
``executemany`` (SQLite) and >= 0.5x raw ``COPY`` (PostgreSQL).
Modes alternate, 3 repetitions each; min/median/max are shown.

Two ceilings are measured alongside, for 64 submitters: the raw writes in commits of
64 rows (with 64 submitters each waiting for its own commit, no commit can hold more:
what an acknowledgement committed straight into the store's table could reach at best),
and ``ack: durable`` into a store whose writes do nothing (what the submitters, the
spool and the writer cost by themselves).

Run with ``uv run --no-sync python benchmarks/bench_durability.py [--quick]``
(PostgreSQL at ``AI_FEEDBACK_BENCH_POSTGRES_URL``, default the test server).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from _common import print_table, run_hermetic
from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackStoreProtocol,
    FeedbackType,
)
from ai_feedback.result import Ok, Result
from ai_feedback.stores import _pg_schema, _sqlite_schema
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.postgres import _encode as pg_encode
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from ai_feedback.stores.sqlite import _encode as sqlite_encode

POSTGRES_URL = os.environ.get(
    "AI_FEEDBACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SUBMITTERS = 64
REPEATS = 3
RAW_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Run:
    """
    One measured run: items/s to stored and caller latencies.
    """

    rate: float
    p50_us: float
    p99_us: float


async def _write_nothing(
    items: list[FeedbackItem], *, raw_payloads: object = None
) -> Result[list[str], Exception]:
    """
    A store's ``save_many`` that writes nothing (the ceiling of everything but the store).
    """
    del raw_payloads
    return Ok([item.id for item in items])


@asynccontextmanager
async def _store(kind: str, n: int) -> AsyncIterator[FeedbackStoreProtocol]:
    if kind == "sqlite":
        path = Path(f"bench-{n}-{secrets.token_hex(4)}.db")
        async with await SQLiteFeedbackStore.open(f"sqlite:///{path}") as store:
            yield store
        return
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
            yield store
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def _measure(kind: str, ack: str, n: int, submitters: int, *, free: bool = False) -> Run:
    async with _store(kind, n) as store:
        if free:
            store.save_many = _write_nothing  # type: ignore[attr-defined]
        config = FeedbackConfig(ack=ack, queue_max_size=max(10_000, n), batch_size=1000)
        collector = FeedbackCollector(store, config)
        await collector.start()
        latencies: list[int] = []
        per_task = n // submitters

        async def submit(task: int) -> None:
            clock = time.perf_counter_ns
            meta = {"model": f"m{task % 4}", "session_id": f"s{task}"}
            for i in range(per_task):
                started = clock()
                await collector.submit_feedback(f"t{task}-{i}", i % 5 + 1, None, meta)
                latencies.append(clock() - started)

        started = time.perf_counter()
        await asyncio.gather(*(submit(t) for t in range(submitters)))
        await collector.flush()
        elapsed = time.perf_counter() - started
        await collector.aclose()
        if collector.counters["stored"] != per_task * submitters:
            msg = f"stored {collector.counters['stored']} of {per_task * submitters}"
            raise RuntimeError(msg)
    latencies.sort()
    return Run(
        rate=per_task * submitters / elapsed,
        p50_us=latencies[len(latencies) // 2] / 1000,
        p99_us=latencies[int(len(latencies) * 0.99)] / 1000,
    )


def _items(n: int, submitters: int) -> list[FeedbackItem]:
    """
    The items the submitters of `_measure` record, built ahead (for the raw baselines).
    """
    per_task = n // submitters
    items = []
    for task in range(submitters):
        meta = {"model": f"m{task % 4}", "session_id": f"s{task}"}
        context = {"trace_id": "", **meta}
        for i in range(per_task):
            context["trace_id"] = f"t{task}-{i}"
            items.append(FeedbackItem(FeedbackType.RATING, i % 5 + 1, dict(context), meta))
    return items


async def _raw(kind: str, items: list[FeedbackItem], batch: int = RAW_BATCH) -> float:
    """
    Write ``items`` by hand, ``batch`` per commit; return items/s (encoding not timed).
    """
    batches = range(0, len(items), batch)
    if kind == "sqlite":
        path = Path(f"raw-{secrets.token_hex(4)}.db")
        async with await SQLiteFeedbackStore.open(f"sqlite:///{path}"):
            pass  # the same schema and indexes
        rows = sqlite_encode(items)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            for pragma in _sqlite_schema.PRAGMAS:
                db.execute(pragma)
            started = time.perf_counter()
            for at in batches:
                db.execute("BEGIN")
                db.executemany(_sqlite_schema.INSERT_SQL, rows[at : at + batch])
                db.execute("COMMIT")
            return len(items) / (time.perf_counter() - started)
        finally:
            db.close()
    async with _store(kind, len(items)) as store:
        if not isinstance(store, PostgresFeedbackStore):
            raise TypeError(store)
        schema = store.schema
        records = [
            tuple(v.decode() if isinstance(v, bytes) else v for v in row)
            for row in pg_encode(items)
        ]
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            started = time.perf_counter()
            for at in batches:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "feedback",
                        schema_name=schema,
                        columns=_pg_schema.WRITE_COLUMNS,
                        records=records[at : at + batch],
                    )
            return len(items) / (time.perf_counter() - started)
        finally:
            await conn.close()


def _spread(values: list[float], fmt: str) -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


def _latency(runs: list[Run]) -> str:
    p50 = statistics.median(r.p50_us for r in runs)
    p99 = statistics.median(r.p99_us for r in runs)
    return f"{p50:,.0f} / {p99:,.0f}"


async def main(quick: bool) -> None:
    """
    Measure each store with 64 submitters and with one, modes and baseline alternated.
    """
    n = 6_400 if quick else 64_000
    rows = []
    ceilings = []
    for kind in ("sqlite", "postgresql"):
        for submitters, count in ((SUBMITTERS, n), (1, n // 8)):
            runs: dict[str, list[Run]] = {"durable": [], "queued": []}
            raw: list[float] = []
            raw_small: list[float] = []
            free: list[float] = []
            items = _items(count, submitters) if submitters > 1 else []
            await _measure(kind, "durable", count // 10, submitters)  # warm-up
            for _ in range(REPEATS):
                for ack in ("queued", "durable"):  # alternated
                    runs[ack].append(await _measure(kind, ack, count, submitters))
                if items:
                    raw.append(await _raw(kind, items))
                    raw_small.append(await _raw(kind, items, submitters))
                    ceiling = await _measure(kind, "durable", count, submitters, free=True)
                    free.append(ceiling.rate)
            if items:
                ceilings.append(_ceiling(kind, submitters, raw, raw_small, free))
            durable, queued = runs["durable"], runs["queued"]
            ratios = [d.rate / q.rate for d, q in zip(durable, queued, strict=True)]
            label = f"{kind}, {submitters} submitter{'s' if submitters > 1 else ''}"
            to_raw = "-"
            if raw:
                target = 0.6 if kind == "sqlite" else 0.5
                by_raw = [d.rate / r for d, r in zip(durable, raw, strict=True)]
                to_raw = f"{_spread(by_raw, '{:.2f}x')} vs {_spread(raw, '{:,.0f}')}/s"
                met = "met" if statistics.median(by_raw) >= target else "NOT met"
                to_raw += f" (>= {target}x: {met})"
            rows.append(
                (
                    label,
                    _spread([r.rate for r in durable], "{:,.0f}"),
                    _spread([r.rate for r in queued], "{:,.0f}"),
                    _spread(ratios, "{:.2f}x"),
                    to_raw,
                    _latency(durable),
                    _latency(queued),
                )
            )
            print(f"{label}: durable {rows[-1][1]}/s, queued {rows[-1][2]}/s, raw {to_raw}")
    print_table(
        (
            "store, submitters",
            "durable items/s",
            "queued items/s",
            "durable / queued",
            "durable / raw (raw items/s)",
            "durable p50/p99 us",
            "queued p50/p99 us",
        ),
        rows,
        title=f"Items/s until stored and caller latency; median (min-max) of {REPEATS} runs",
    )
    print_table(
        (
            "store, submitters",
            "raw, 1,000 per commit",
            "raw, one commit per submitter group",
            "/ raw",
            "durable, store writes nothing",
            "/ raw",
        ),
        ceilings,
        title="Ceilings, measured in the same run",
    )


def _ceiling(
    kind: str, submitters: int, raw: list[float], raw_small: list[float], free: list[float]
) -> tuple[str, ...]:
    def ratio(values: list[float]) -> str:
        return _spread([v / r for v, r in zip(values, raw, strict=True)], "{:.2f}x")

    return (
        f"{kind}, {submitters} submitters",
        _spread(raw, "{:,.0f}"),
        f"{_spread(raw_small, '{:,.0f}')} ({submitters} rows)",
        ratio(raw_small),
        _spread(free, "{:,.0f}"),
        ratio(free),
    )


if __name__ == "__main__":
    run_hermetic("bench_durability", __doc__ or "", main)
