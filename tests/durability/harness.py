"""
Child processes for the crash and outage tests, and what they left in the stores.

`Child` runs a command (usually `tests.durability.ingest`) with a clean environment
plus the given ``AI_FEEDBACK__*`` settings, collects the ids it prints as it goes, and
can be killed or stopped with a real signal at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from tests.stores.backend_postgresql import POSTGRES_URL

REPO = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = float(os.environ.get("AI_FEEDBACK_TEST_OUTAGE_SECONDS", "60"))
"""How long the outage tests keep the store away (60 s unless overridden)."""


def child_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a child: this one without ai_feedback settings, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("AI_FEEDBACK__", "LEX_AI_FEEDBACK__"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update({f"AI_FEEDBACK__{key.upper()}": value for key, value in settings.items()})
    return env


class Child:
    """
    A child process whose printed ids are collected while it runs.

    Args:
        args: Arguments after ``python -m``.
        cwd: Its working directory.
        settings: ``AI_FEEDBACK__`` settings, without the prefix.
    """

    def __init__(self, args: list[str], cwd: Path, settings: dict[str, str]) -> None:
        self.args = args
        self.cwd = cwd
        self.settings = settings
        self.acked: list[str] = []
        self.lines: list[str] = []
        self.done = False
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()

    async def start(self) -> Child:
        """Start the process and the reading of its output."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *self.args,
            cwd=self.cwd,
            env=child_env(self.settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            if not raw.endswith(b"\n"):
                break  # a line cut by a kill: never fully acknowledged
            line = raw.decode().rstrip("\n")
            if len(line) == 36 and line.count("-") == 4:
                self.acked.append(line)
            elif line == "DONE":
                self.done = True
            else:
                self.lines.append(line)
            self._progress.set()

    async def wait_for_acks(self, count: int, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Wait until the child acknowledged ``count`` items."""
        async with asyncio.timeout(timeout):
            while len(self.acked) < count:
                if self.process is not None and self.process.returncode is not None:
                    msg = f"the child ended early: {self.output()}"
                    raise AssertionError(msg)
                self._progress.clear()
                await self._progress.wait()

    def send(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the child."""
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float = 120) -> int:  # noqa: ASYNC109
        """Wait for the child to end and its output to be read; return its exit status."""
        assert self.process is not None
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def kill(self) -> None:
        """End the child if it still runs (cleanup)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def printed(self, text: str) -> bool:
        """Whether any line the child printed (logs included) contains ``text``."""
        return any(text in line for line in self.lines)

    def output(self) -> str:
        """What the child printed besides ids, for failure messages."""
        return "\n".join(self.lines[-40:])


async def run_to_end(args: list[str], cwd: Path, settings: dict[str, str]) -> Child:
    """Run a child to its end; fail with its output if it does not exit cleanly."""
    child = await Child(args, cwd, settings).start()
    try:
        code = await child.wait()
    finally:
        await child.kill()
    assert code == 0, child.output()
    return child


async def wait_until_stored(
    acked: list[str], stored: Callable[[], Awaitable[list[str]]], limit: float = 90
) -> list[str]:
    """Poll ``stored`` until every acknowledged id is there (or ``limit`` seconds pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        ids = await stored()
        if set(acked) <= set(ids) or loop.time() > deadline:
            return ids
        await asyncio.sleep(0.2)


def sqlite_ids(path: Path) -> list[str]:
    """Every id stored in the SQLite store at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT id FROM feedback")]


def spool_depth(path: Path) -> int:
    """How many entries wait in the SQLite spool at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])


async def pg_ids(schema: str) -> list[str]:
    """Every id stored in the PostgreSQL store in ``schema``."""
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(f'SELECT id FROM "{schema}".feedback')  # noqa: S608 - test schema
    finally:
        await conn.close()
    return [row["id"] for row in rows]


def assert_stored_once(acked: list[str], stored: list[str]) -> None:
    """Every acknowledged id is stored, and nothing is stored twice."""
    assert len(stored) == len(set(stored)), "an item was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged items were lost"
    assert len(acked) == len(set(acked)), "an id was acknowledged twice"
