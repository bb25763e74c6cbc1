"""
Streaming 1,000,000 items from every store in constant memory.

The items are generated and saved in batches; the scan then reads them all, a keyset
page at a time, while the process's resident memory is sampled. Reading everything
into a list would add hundreds of megabytes; the scan may add at most 64 MB.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import FeedbackFilter, FeedbackType, MemoryFeedbackStore
from ai_feedback._models import new_id, trusted_item
from ai_feedback.stores.cached import CachedFeedbackStore
from tests.stores import backend_postgresql, backend_sqlite
from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix

TOTAL = 1_000_000
MAX_GROWTH_MB = 64


def _rss_mb() -> float:
    with Path("/proc/self/statm").open(encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@asynccontextmanager
async def _open(kind: str, tmp_path: Path) -> AsyncIterator[Any]:
    if kind == "memory":
        yield MemoryFeedbackStore(max_items=TOTAL + 1)
    elif kind == "cached":
        prefix = unique_prefix()
        inner = MemoryFeedbackStore(max_items=TOTAL + 1)
        try:
            async with CachedFeedbackStore(inner, REDIS_URL, prefix=prefix) as store:
                yield store
        finally:
            await delete_keys(prefix)
    else:
        backend = backend_sqlite if kind == "sqlite" else backend_postgresql
        async with backend.open_store(tmp_path) as store:
            yield store


async def _fill(kind: str, store: Any, base: datetime) -> None:
    """
    Put TOTAL items in ``store`` the fast way for its kind (the scan is what is tested).

    The databases generate the rows in SQL (the same columns their stores write); the
    in-memory store indexes pre-validated items directly.
    """
    if kind == "sqlite":
        await store._db.execute(_SQLITE_FILL, (TOTAL, _micros(base)))
        await store._db.commit()
        return
    if kind == "postgresql":
        async with store._pool.acquire() as conn:
            await conn.execute(_POSTGRES_FILL, TOTAL, base)
        return
    memory = store.inner if kind == "cached" else store
    for i in range(TOTAL):
        memory._insert(
            trusted_item(
                FeedbackType.RATING,
                i % 5 + 1,
                {"session_id": f"s{i % 1000}", "model": "m"},
                {},
                new_id(),
                base + timedelta(microseconds=i),
            )
        )


_SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
INSERT INTO feedback (id, feedback_type, value, rating, context, metadata, session_id,
                      model, created_at)
SELECT printf('item-%08d', i), 'rating', i % 5 + 1, i % 5 + 1,
       '{"session_id":"s' || (i % 1000) || '","model":"m"}', '{}', 's' || (i % 1000), 'm',
       ?2 + i
FROM n
"""
_POSTGRES_FILL = """
INSERT INTO feedback (id, feedback_type, created_at, rating, session_id, model, value,
                      context, metadata)
SELECT format('item-%s', lpad(i::text, 8, '0')), 'rating',
       $2::timestamptz + i * interval '1 microsecond', i % 5 + 1, 's' || (i % 1000), 'm',
       to_json(i % 5 + 1), json_build_object('session_id', 's' || (i % 1000), 'model', 'm'),
       '{}'::json
FROM generate_series(0, $1 - 1) AS i
"""


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.mark.parametrize(
    "kind",
    [
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("cached", marks=pytest.mark.redis),
    ],
)
async def test_a_million_items_stream_in_flat_memory(kind: str, tmp_path: Path) -> None:
    """scan() yields all 1,000,000 items, newest first, with resident memory flat."""
    base = datetime.now(UTC) - timedelta(days=1)
    async with _open(kind, tmp_path) as store:
        await _fill(kind, store, base)
        gc.collect()
        start_mb = peak_mb = _rss_mb()
        count = 0
        previous = None
        async for item in store.scan(page_size=2000):
            count += 1
            stamp = item.created_at
            assert previous is None or stamp < previous  # newest first, each once
            previous = stamp
            if count % 50_000 == 0:
                peak_mb = max(peak_mb, _rss_mb())
        assert count == TOTAL
        assert peak_mb - start_mb < MAX_GROWTH_MB, (start_mb, peak_mb)
        session = [i async for i in store.scan(FeedbackFilter(session_id="s7"))]
        assert len(session) == TOTAL // 1000
        assert {i.value for i in session} == {3}  # 7 % 5 + 1: the values came back
