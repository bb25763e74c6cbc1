"""An ingest survives a PostgreSQL outage in the middle: every item stored exactly once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ai_feedback import FeedbackCollector, FeedbackConfig
from ai_feedback.stores.postgres import PostgresFeedbackStore
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema
from tests.stores.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

ITEMS = 4000


async def _wait_until(predicate: object, limit_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            msg = "condition not reached in time"
            raise AssertionError(msg)
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("failure", ["cut", "stall"])
async def test_ingest_through_an_outage_loses_and_duplicates_nothing(failure: str) -> None:
    """Cut (or stall) the database mid-ingest, bring it back: all items land exactly once."""
    async with fresh_schema() as schema, TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        store = await PostgresFeedbackStore.open(
            url, schema=schema, command_timeout=1.0, connect_timeout=1.0
        )
        config = FeedbackConfig(
            async_processing=True,
            batch_size=200,
            batch_max_delay_ms=5,
            queue_max_size=500,
            max_attempts=100,
            retry_backoff_ms=20,
            retry_backoff_max_ms=300,
        )
        collector = FeedbackCollector(store, config)
        ids: list[str] = []

        async def ingest() -> None:
            for i in range(ITEMS):
                context = {"session_id": f"s{i % 50}", "model": "m"}
                ids.append(await collector.collect_rating(i % 5 + 1, context=context))

        task = asyncio.create_task(ingest())
        await _wait_until(lambda: collector.counters["stored"] >= ITEMS // 4)
        await (proxy.cut() if failure == "cut" else proxy.stall())
        await _wait_until(lambda: collector.counters["retries"] >= 2)
        stored_during_outage = collector.counters["stored"]
        assert stored_during_outage < ITEMS
        await proxy.restore()
        await task
        await collector.flush()
        await collector.aclose()
        await store.aclose()

        assert collector.failures == []
        assert collector.counters["stored"] == ITEMS
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            rows = await conn.fetch(f'SELECT id FROM "{schema}".feedback')  # noqa: S608 - test schema
        finally:
            await conn.close()
        stored_ids = [row["id"] for row in rows]
        assert len(stored_ids) == ITEMS
        assert sorted(stored_ids) == sorted(ids)
