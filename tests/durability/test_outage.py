"""
Outages with real processes: the store away for a minute, a writer killed mid-batch.

Each outage runs `tests.durability.ingest` in a child process at a steady rate and takes
the store away under it: PostgreSQL behind a TCP proxy that is cut, or SQLite locked by
another process. Submissions keep being acknowledged meanwhile (into the spool); when
the store is back everything drains. ``AI_FEEDBACK_TEST_OUTAGE_SECONDS`` (60 by default)
sets how long the store stays away. The two outages run at the same time (each child
submits 500 items a second, so they hardly compete) to keep the suite's wall time.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from ai_feedback import FeedbackCollector, FeedbackConfig, FeedbackFilter
from ai_feedback.stores.postgres import PostgresFeedbackStore
from tests.durability.harness import (
    OUTAGE_SECONDS,
    Child,
    assert_stored_once,
    pg_ids,
    spool_depth,
    sqlite_ids,
    wait_until_stored,
)
from tests.spool.nats_server import fresh_stream, spool_url
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema
from tests.stores.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

INGEST = ["tests.durability.ingest", "--count", "1000000", "--tasks", "4", "--rate", "500"]
HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def _through(proxy: TcpProxy, schema: str) -> dict[str, str]:
    """The settings of a child whose PostgreSQL store is reached through ``proxy``."""
    return {
        "store": "postgresql",
        "database_url": f"postgresql://postgres@127.0.0.1:{proxy.port}/test",
        "database_schema": schema,
    }


async def _acks_during(child: Child, seconds: float) -> int:
    before = len(child.acked)
    await asyncio.sleep(seconds)
    return len(child.acked) - before


@pytest.mark.postgres
async def test_stores_away_for_a_minute_lose_nothing(tmp_path: Path) -> None:
    """PostgreSQL unreachable and SQLite locked, both at once: every ack is stored once."""
    (tmp_path / "postgresql").mkdir()
    (tmp_path / "sqlite").mkdir()
    results = await asyncio.gather(
        _postgres_away(tmp_path / "postgresql"),
        _sqlite_locked(tmp_path / "sqlite"),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0] if len(failures) == 1 else BaseExceptionGroup("both", failures)


async def _postgres_away(tmp_path: Path) -> None:
    """PostgreSQL unreachable mid-ingest: submissions go on, and every one is stored once."""
    async with fresh_schema() as schema, TcpProxy("127.0.0.1", 5432) as proxy:
        child = await Child(INGEST, tmp_path, _through(proxy, schema)).start()
        try:
            await child.wait_for_acks(1000)
            await proxy.cut()
            during = await _acks_during(child, OUTAGE_SECONDS)
            await proxy.restore()
            await child.wait_for_acks(len(child.acked) + 500)
            child.send(signal.SIGTERM)
            assert await child.wait() == 128 + signal.SIGTERM, child.output()
        finally:
            await child.kill()
        assert during > OUTAGE_SECONDS * 100, "submissions stalled while the store was away"
        assert child.printed("retrying")
        assert_stored_once(child.acked, await pg_ids(schema))


async def _sqlite_locked(tmp_path: Path) -> None:
    """Another process holds the SQLite write lock mid-ingest: nothing is lost or doubled."""
    db = tmp_path / "feedback.db"
    settings = {"store": "sqlite", "database_url": f"sqlite:///{db}"}
    child = await Child(INGEST, tmp_path, settings).start()
    locker = None
    try:
        await child.wait_for_acks(1000)
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLD_LOCK,
            str(db),
            str(OUTAGE_SECONDS),
            stdout=asyncio.subprocess.PIPE,
        )
        assert locker.stdout is not None
        assert await locker.stdout.readline() == b"LOCKED\n"
        during = await _acks_during(child, OUTAGE_SECONDS)
        assert await locker.wait() == 0
        await child.wait_for_acks(len(child.acked) + 500)
        child.send(signal.SIGTERM)
        assert await child.wait() == 128 + signal.SIGTERM, child.output()
    finally:
        await child.kill()
        if locker is not None and locker.returncode is None:
            locker.kill()
            await locker.wait()
    assert during > OUTAGE_SECONDS * 100, "submissions stalled while the store was locked"
    assert child.printed("another connection holds the write lock")
    assert_stored_once(child.acked, sqlite_ids(db))
    assert spool_depth(tmp_path / "feedback.db-spool") == 0


@pytest.mark.postgres
async def test_a_deletion_in_another_process_withdraws_what_a_spool_holds(
    tmp_path: Path,
) -> None:
    """
    PostgreSQL is out of one process's reach while another deletes: nothing acked lands.

    The child keeps acknowledging items into its spool during the outage; this process
    deletes every item of the child's model directly in the database; when the child
    reaches the database again, its writer withdraws what it accepted before the
    deletion and stores what it accepted after it.
    """
    async with fresh_schema() as schema, TcpProxy("127.0.0.1", 5432) as proxy:
        child = await Child(INGEST, tmp_path, _through(proxy, schema)).start()
        try:
            await child.wait_for_acks(500)
            await proxy.cut()
            await child.wait_for_acks(len(child.acked) + 500)
            before = set(child.acked)
            async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
                here = FeedbackCollector(store, FeedbackConfig(async_processing=False))
                receipt = await here.delete(FeedbackFilter(model="m"))
            await proxy.restore()
            restored = len(child.acked)
            await child.wait_for_acks(restored + 500)
            child.send(signal.SIGTERM)
            assert await child.wait() == 128 + signal.SIGTERM, child.output()
        finally:
            await child.kill()
        stored = await pg_ids(schema)
        assert receipt.items > 0  # what landed before the outage went at once
        assert not set(stored) & before, "items acknowledged before the deletion landed"
        assert set(child.acked[restored:]) <= set(stored)
        assert len(stored) == len(set(stored))


@pytest.mark.postgres
@pytest.mark.nats
async def test_killing_one_of_two_writers_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Two writer processes share a JetStream spool; one is killed mid-batch; all land once."""
    async with fresh_schema() as schema, fresh_stream() as stream:
        shared = {
            "store": "postgresql",
            "database_url": "postgresql://postgres@127.0.0.1:5432/test",
            "database_schema": schema,
            "spool_url": spool_url(stream, ack_wait=3),
        }
        writers = [
            await Child(["ai_feedback", "writer"], tmp_path, shared).start() for _ in range(2)
        ]
        producer = await Child(
            ["tests.durability.ingest", "--count", "12000", "--tasks", "8", "--rate", "2000"],
            tmp_path,
            {**shared, "run_writer": "false"},
        ).start()
        try:
            await producer.wait_for_acks(4000)
            while len(await pg_ids(schema)) < 2000:  # noqa: ASYNC110 - polls another process
                await asyncio.sleep(0.05)
            writers[0].send(signal.SIGKILL)
            assert await writers[0].wait() == -signal.SIGKILL
            assert await producer.wait() == 0, producer.output()
            assert producer.done
            ids = await wait_until_stored(producer.acked, lambda: pg_ids(schema))
            writers[1].send(signal.SIGTERM)
            assert await writers[1].wait() == 0, writers[1].output()
        finally:
            for child in (producer, *writers):
                await child.kill()
        assert len(producer.acked) == 12000
        assert_stored_once(producer.acked, ids)
