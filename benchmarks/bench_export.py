"""
Export and deletion over 1,000,000 items, against the fastest hand-written path.

For SQLite and PostgreSQL: N items (ratings with a session, a model and a captured
prompt and answer) are saved, then exported as raw JSON Lines by ``export(store, "raw")``
and by a hand-written baseline producing the same rows in the same order: for SQLite the
stdlib ``sqlite3`` module and orjson; for PostgreSQL ``COPY (SELECT json_build_object(...))
TO STDOUT``, where the server builds the JSON. Printed: both rates, the ratio (target:
>= 0.5x), the resident memory the export added (target: < 100 MB), and the SFT export
rate. Then one session (10 of the N items) is deleted through ``store.delete`` and by a
hand-written ``DELETE ... WHERE session_id = ?``, 5 times each: milliseconds and ratio.

Run with ``uv run --no-sync python benchmarks/bench_export.py [--quick]`` (100,000 items
with --quick; PostgreSQL at ``AI_FEEDBACK_BENCH_POSTGRES_URL``, default the test server).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import asyncpg
import orjson

from _common import print_table, run_hermetic
from ai_feedback import FeedbackFilter, FeedbackType
from ai_feedback._models import new_id, trusted_item
from ai_feedback.export import export
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore

POSTGRES_URL = os.environ.get(
    "AI_FEEDBACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SESSION_SIZE = 10
DELETES = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rss_mb() -> float:
    with Path("/proc/self/statm").open(encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """
    Samples the resident memory every 10 ms in a thread; ``growth_mb`` is peak - start.
    """

    def __init__(self) -> None:
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def growth_mb(self) -> float:
        """
        The resident memory added while sampling, in MB.
        """
        return self.peak - self.start

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())


async def _fill(store: Any, n: int) -> None:
    base = datetime.now(UTC) - timedelta(days=1)
    sessions = max(1, n // SESSION_SIZE)
    for start in range(0, n, 20_000):
        batch = [
            trusted_item(
                FeedbackType.RATING,
                i % 5 + 1,
                {
                    "session_id": f"s{i % sessions}",
                    "model": "gpt-4o",
                    "captured": {"input": f"question {i}", "output": f"answer {i}"},
                },
                {"source": "bench"},
                new_id(),
                base + timedelta(microseconds=i),
            )
            for i in range(start, min(n, start + 20_000))
        ]
        (await store.save_many(batch)).unwrap()


def _sqlite_baseline(path: str, out: Path) -> int:
    """
    The hand-written export: sqlite3 and orjson, same rows, same order.
    """
    written = 0
    db = sqlite3.connect(path)
    dumps, loads = orjson.dumps, orjson.loads
    try:
        rows = db.execute(
            "SELECT id, feedback_type, value, context, metadata, created_at FROM feedback "
            "ORDER BY created_at DESC, id DESC"
        )
        with out.open("wb") as file:
            for item_id, kind, value, context, metadata, created in rows:
                stamp = _EPOCH + timedelta(microseconds=created)
                row = {
                    "id": item_id,
                    "feedback_type": kind,
                    "value": loads(value),
                    "context": loads(context),
                    "metadata": loads(metadata),
                    "created_at": stamp.isoformat(),
                }
                file.write(dumps(row) + b"\n")
                written += 1
    finally:
        db.close()
    return written


async def _postgres_baseline(schema: str, out: Path) -> int:
    """
    The hand-written export: COPY of server-built JSON, same rows, same order.
    """
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        query = (
            "SELECT json_build_object('id', id, 'feedback_type', feedback_type, 'value', value,"  # noqa: S608
            " 'context', context, 'metadata', metadata, 'created_at', created_at) "
            f'FROM "{schema}".feedback ORDER BY created_at DESC, id DESC'
        )
        await conn.copy_from_query(query, output=str(out))
    finally:
        await conn.close()
    with out.open("rb") as file:
        return sum(1 for _ in file)


async def _timed(run: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    started = time.perf_counter()
    count = await run()
    return time.perf_counter() - started, count


@asynccontextmanager
async def _opened(kind: str) -> AsyncIterator[tuple[Any, str]]:
    if kind == "sqlite":
        path = f"bench-export-{secrets.token_hex(4)}.db"
        async with await SQLiteFeedbackStore.open(path) as store:
            yield store, path
        return
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
            yield store, schema
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _bench(kind: str, n: int) -> list[list[str]]:
    async with _opened(kind) as (store, where):
        started = time.perf_counter()
        await _fill(store, n)
        print(f"{kind}: {n:,} items saved in {time.perf_counter() - started:.1f} s")
        ours_file, base_file = Path(f"ours-{kind}.jsonl"), Path(f"base-{kind}.jsonl")

        async def baseline() -> int:
            if kind == "sqlite":
                return await asyncio.to_thread(_sqlite_baseline, where, base_file)
            return await _postgres_baseline(where, base_file)

        async def ours() -> int:
            return (await export(store, "raw", ours_file)).written

        base_s, base_n = await _timed(baseline)
        with PeakMemory() as memory:
            ours_s, ours_n = await _timed(ours)
        _check(base_n == ours_n == n, f"row counts differ: {base_n}, {ours_n}, {n}")
        if kind == "sqlite":  # same bytes (PostgreSQL formats its JSON its own way)
            same = await asyncio.to_thread(_same_bytes, ours_file, base_file)
            _check(same, "the export differs from the hand-written one")
        sft_s, sft_n = await _timed(
            lambda: _written(export(store, "sft", Path(f"sft-{kind}.jsonl"), min_rating=4))
        )
        ratio = base_s / ours_s
        print(
            f"{kind}: export raw {n / ours_s:,.0f} items/s, baseline {n / base_s:,.0f} items/s "
            f"({ratio:.2f}x), memory +{memory.growth_mb:.0f} MB; sft {n / sft_s:,.0f} items/s "
            f"({sft_n:,} rows)"
        )
        rows = [
            [
                f"{kind} export raw",
                f"{n / ours_s:,.0f} items/s",
                f"{n / base_s:,.0f} items/s",
                f"{ratio:.2f}x",
                ">= 0.5x",
                "ok" if ratio >= 0.5 else "MISSED",
            ],
            [
                f"{kind} export memory",
                f"+{memory.growth_mb:.0f} MB",
                "-",
                "-",
                "< 100 MB",
                "ok" if memory.growth_mb < 100 else "MISSED",
            ],
        ]
        rows.append(await _deletion(kind, store, where, n))
        for path in (ours_file, base_file, Path(f"sft-{kind}.jsonl")):
            path.unlink(missing_ok=True)
        return rows


async def _written(summary: Awaitable[Any]) -> int:
    return int((await summary).written)


async def _deletion(kind: str, store: Any, where: str, n: int) -> list[str]:
    sessions = max(1, n // SESSION_SIZE)
    ours_ms, base_ms = [], []
    conn = await asyncpg.connect(POSTGRES_URL) if kind == "postgresql" else None
    db = sqlite3.connect(where, isolation_level=None) if kind == "sqlite" else None
    try:
        for i in range(DELETES):
            started = time.perf_counter()
            removed = await store.delete(FeedbackFilter(session_id=f"s{i * 7 % sessions}"))
            ours_ms.append((time.perf_counter() - started) * 1000)
            _check(removed.items == SESSION_SIZE, f"deleted {removed}")
            session = f"s{(i * 7 + 3) % sessions}"
            started = time.perf_counter()  # an open connection, like the store's
            if db is not None:
                db.execute("DELETE FROM feedback WHERE session_id = ?", (session,))
            elif conn is not None:
                await conn.execute(
                    f'DELETE FROM "{where}".feedback WHERE session_id = $1',  # noqa: S608
                    session,
                )
            base_ms.append((time.perf_counter() - started) * 1000)
    finally:
        if conn is not None:
            await conn.close()
        if db is not None:
            db.close()
    ours, base = statistics.median(ours_ms), statistics.median(base_ms)
    print(f"{kind}: delete one session: {ours:.1f} ms (hand-written DELETE {base:.1f} ms)")
    return [
        f"{kind} delete 1 session",
        f"{ours:.1f} ms",
        f"{base:.1f} ms",
        f"{base / ours:.2f}x",
        "milliseconds",
        "ok" if ours < 100 else "MISSED",
    ]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"bench_export: {message}")


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


async def main(quick: bool) -> None:
    """
    Export and delete over 1,000,000 items (100,000 with --quick) in SQLite and PostgreSQL.
    """
    n = 100_000 if quick else 1_000_000
    rows = []
    for kind in ("sqlite", "postgresql"):
        rows += await _bench(kind, n)
    header = ["measure", "ai-feedback", "hand-written", "ratio", "target", "result"]
    print_table(header, rows)


if __name__ == "__main__":
    run_hermetic("bench_export", __doc__ or "", main)
