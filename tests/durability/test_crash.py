"""
Crash and shutdown tests with real processes and real signals.

A child process boots the default `Application` and submits ratings in tight loops,
printing every id it got an acknowledgement for. It is killed with SIGKILL at a random
moment, or stopped with SIGTERM; a second process then boots on the same store (which
replays what the first left in its spool). Every acknowledged id must be stored exactly
once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.durability.harness import (
    Child,
    assert_stored_once,
    pg_ids,
    run_to_end,
    spool_depth,
    sqlite_ids,
    wait_until_stored,
)
from tests.spool.nats_server import fresh_stream, spool_url
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema

INGEST = ["tests.durability.ingest"]
# Random moments, reproducible from the seed printed in the test's output (set
# AI_FEEDBACK_TEST_SEED to repeat a run). Parallel test workers share one run id, hence one
# seed, so that they collect the same tests.
SEED = int(
    os.environ.get("AI_FEEDBACK_TEST_SEED")
    or int(os.environ.get("PYTEST_XDIST_TESTRUNUID") or "0", 16) % 2**32
    or random.randrange(2**32)  # noqa: S311 - test data, not secrets
)
MOMENTS = random.Random(SEED).sample(range(300, 6000), 3)  # noqa: S311

Backend = tuple[dict[str, str], Callable[[], Awaitable[list[str]]]]


@asynccontextmanager
async def _backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """The settings of a fresh store (and spool) of ``kind``, and a reader of its ids."""
    if kind == "sqlite":
        db = tmp_path / "feedback.db"

        async def read() -> list[str]:
            return sqlite_ids(db)

        yield {"store": "sqlite", "database_url": f"sqlite:///{db}"}, read
        return
    async with fresh_schema() as schema:
        settings = {"store": "postgresql", "database_url": POSTGRES_URL, "database_schema": schema}

        async def read_pg() -> list[str]:
            return await pg_ids(schema)

        if kind == "postgresql":
            yield settings, read_pg
            return
        async with fresh_stream() as stream:
            yield {**settings, "spool_url": spool_url(stream, ack_wait=2)}, read_pg


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("nats", marks=[pytest.mark.postgres, pytest.mark.nats]),
    ],
)
async def test_kill_9_mid_ingest_loses_nothing(kind: str, moment: int, tmp_path: Path) -> None:
    """SIGKILL at a random moment of a tight-loop ingest: every acknowledged id is stored once."""
    print(f"seed {SEED}: killing after {moment} acknowledgements")  # noqa: T201
    async with _backend(kind, tmp_path) as (settings, stored):
        args = [*INGEST, "--count", "100000", "--tasks", "8"]
        child = await Child(args, tmp_path, settings).start()
        try:
            await child.wait_for_acks(moment)
            child.send(signal.SIGKILL)
            assert await child.wait() == -signal.SIGKILL
        finally:
            await child.kill()
        assert not child.done
        if kind != "nats":
            await run_to_end([*INGEST, "--count", "0"], tmp_path, settings)  # replays the spool
            assert_stored_once(child.acked, await stored())
            return
        # The stream kept what the dead process published; a writer process stores it.
        writer = await Child(["ai_feedback", "writer"], tmp_path, settings).start()
        try:
            ids = await wait_until_stored(child.acked, stored)
            writer.send(signal.SIGTERM)
            assert await writer.wait() == 0, writer.output()
        finally:
            await writer.kill()
        assert_stored_once(child.acked, ids)


@pytest.mark.slow
@pytest.mark.parametrize("ack", ["durable", "queued"])
async def test_sigterm_of_a_plain_script_drains_before_exiting(ack: str, tmp_path: Path) -> None:
    """SIGTERM makes a plain asyncio.run script store everything it acknowledged, then exit 143."""
    db = tmp_path / "feedback.db"
    settings = {"store": "sqlite", "database_url": f"sqlite:///{db}", "ack": ack}
    args = [*INGEST, "--count", "100000", "--tasks", "8"]
    child = await Child(args, tmp_path, settings).start()
    try:
        await child.wait_for_acks(3000)
        child.send(signal.SIGTERM)
        code = await child.wait()
    finally:
        await child.kill()
    assert code == 128 + signal.SIGTERM, child.output()
    assert "Received SIGTERM" in child.output()
    assert_stored_once(child.acked, sqlite_ids(db))  # no restart: the drain stored them
    if ack == "durable":
        assert spool_depth(tmp_path / "feedback.db-spool") == 0


@pytest.mark.slow
async def test_sigterm_of_ai_feedback_serve_drains(tmp_path: Path) -> None:
    """ai-feedback serve stores everything it answered 202 for, then exits 0 on SIGTERM."""
    db = tmp_path / "feedback.db"
    port = _free_port()
    settings = {"store": "sqlite", "database_url": f"sqlite:///{db}", "batch_max_delay_ms": "500"}
    args = ["ai_feedback", "serve", "--port", str(port), "--insecure-no-auth"]
    server = await Child(args, tmp_path, settings).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            answers = await asyncio.gather(
                *(http.post("/v1/feedback", json={"score": i % 5 + 1}) for i in range(300))
            )
        assert {a.status_code for a in answers} == {202}
        server.send(signal.SIGTERM)
        assert await server.wait() == 0, server.output()
    finally:
        await server.kill()
    assert server.output().count("Authentication is OFF") == 1, server.output()
    assert_stored_once([a.json()["id"] for a in answers], sqlite_ids(db))
    assert spool_depth(tmp_path / "feedback.db-spool") == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
