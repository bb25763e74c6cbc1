"""
The local durable spool behind ``ack: durable``: an SQLite file in WAL mode.

`append` returns once the entry is committed with ``synchronous=FULL`` (fsync'd).
Concurrent submitters share commits: while one transaction is being written, the
entries that arrive wait together for the next one (group commit), so 64 submitters
pay for a handful of fsyncs, not 64.

The writer drains entries in order; those it takes from this process are read from
memory (up to ``memory_items``), the others (an earlier run's, or past that bound) from
the file. A completed batch is deleted in one statement; an entry the store refuses is
moved to the ``dead_letters`` table of the same file.

One process uses a spool file at a time (it holds ``<file>.lock``). A process that finds
the file taken uses ``<file>.1``, ``<file>.2``, ... so that several processes of one
application each get their own; at start, a process also moves into its own file the
entries of the files no live process holds, so that nothing a crashed process spooled
waits for that process to come back. The file records which store it feeds, and
refuses to feed another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from ai_feedback._models import Entry, FeedbackFilter, FeedbackItem, Spooled, SpoolStatus
from ai_feedback.exceptions import FeedbackConfigurationError, FeedbackStorageError
from ai_feedback.spool._base import SequencedSpool, decode_entry, encode_entry

__all__ = ["MAX_PROCESSES", "DeadLetter", "SQLiteSpool"]

_LOG = logging.getLogger("ai_feedback")
T = TypeVar("T")

MAX_PROCESSES = 64
"""Most processes that can spool next to one another (files ``<path>``, ``<path>.1``, ...)."""

_FORMAT = "1"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, item_id TEXT NOT NULL, "
        "entry BLOB NOT NULL, enqueued_at REAL NOT NULL)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, "
        "item_id TEXT NOT NULL, entry BLOB NOT NULL, enqueued_at REAL NOT NULL, "
        "stage TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, "
        "failed_at REAL NOT NULL)"
    ),
)
_INSERT = "INSERT INTO entries (seq, item_id, entry, enqueued_at) VALUES (?, ?, ?, ?)"
_SELECT = "SELECT seq, entry FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?"
_DELETE = "DELETE FROM entries WHERE seq BETWEEN ? AND ?"
_DEAD = (
    "INSERT INTO dead_letters (seq, item_id, entry, enqueued_at, stage, error, attempts, "
    "failed_at) SELECT seq, item_id, entry, enqueued_at, ?, ?, ?, ? FROM entries WHERE seq = ?"
)
_ADOPT = (
    "INSERT INTO entries (item_id, entry, enqueued_at) "
    "SELECT item_id, entry, enqueued_at FROM orphan.entries ORDER BY seq"
)
_ADOPT_DEAD = (
    "INSERT INTO dead_letters (seq, item_id, entry, enqueued_at, stage, error, attempts, "
    "failed_at) SELECT seq, item_id, entry, enqueued_at, stage, error, attempts, failed_at "
    "FROM orphan.dead_letters ORDER BY id"
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """
    An accepted item the store or the pipeline refused, kept in the spool file.

    Args:
        item: The item as accepted, or None when its entry could not be read.
        stage: ``processing``, ``storage`` or ``spool``.
        error: The reason, as text.
        attempts: Store attempts made.
        failed_at: When it was set aside (seconds since the epoch).
    """

    item: FeedbackItem | None
    stage: str
    error: str
    attempts: int
    failed_at: float


class SQLiteSpool(SequencedSpool):
    """
    A durable spool in one SQLite file per process.

    Args:
        path: The spool file (other processes use ``<path>.1``, ``<path>.2``, ...).
        identity: Names the store the spool feeds; a file holding items for another
            store is refused.
        capacity: Most items held before submitters wait.
        full_wait: Seconds a submitter waits for room before `FeedbackOverloadedError`.
        memory_items: Most entries also kept in memory for the writer.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        identity: str,
        capacity: int = 1_000_000,
        full_wait: float = 5.0,
        memory_items: int = 10_000,
    ) -> None:
        self._base = Path(path).absolute()
        super().__init__(capacity=capacity, full_wait=full_wait, what=f"spool {self._base}")
        self._identity = identity
        self._memory_items = memory_items
        self._path = self._base
        self._lock: FileLock | None = None
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._cache: dict[int, Entry] = {}
        self._pending: list[tuple[int, str, bytes, float]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._forgotten: list[tuple[int, int]] = []  # completed ranges not yet deleted
        self._replayed_upto = 0  # marks an earlier run left (they may be stored already)
        self._start_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None
        self._committing = 0
        self._started = False

    def __repr__(self) -> str:
        state = "open" if self._db is not None else "closed"
        return f"<SQLiteSpool {str(self._path)!r} depth={self._depth} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_db", None) is not None:
            warnings.warn(f"{self!r} was never closed", ResourceWarning, stacklevel=1)

    @property
    def durable(self) -> bool:
        """
        True: entries are fsync'd before `append` returns.
        """
        return True

    @property
    def location(self) -> str:
        """
        The file this process spools to.
        """
        return str(self._path)

    @property
    def family(self) -> Path:
        """
        The spool file this process and its siblings (``.1``, ``.2``, ...) are named after.
        """
        return self._base

    async def start(self) -> None:
        """
        Claim a spool file, adopt orphaned ones, and find the entries to replay.

        Raises:
            FeedbackConfigurationError: The file feeds another store, or every file of
                the family is held by a live process.
            FeedbackStorageError: The file cannot be opened.
        """
        async with self._start_lock:
            if self._started:
                return
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ai_feedback-spool")
            try:
                first, last, count = await self._run(self._open)
            except BaseException:
                self._executor.shutdown(wait=False)
                self._executor = None
                raise
            self._started = True
            self._replayed_upto = last
        self._taken = self._done = first - 1
        # What an earlier run left counts as this process's: a flush (and the drain at
        # shutdown) waits for it too.
        self._ready = self._reserved = self._last_mark = last
        self._depth = count
        if count:
            _LOG.info(
                "Replaying %d feedback item(s) left in the spool %s",
                count,
                self._path,
                extra={"spool": str(self._path), "items": count},
            )

    async def append(self, entry: Entry) -> int:
        """
        Write ``entry`` to the file; return once it is committed and fsync'd.

        Raises:
            FeedbackOverloadedError: The spool is still full after ``full_wait`` seconds.
            FeedbackStorageError: The file cannot be written (disk full, removed).
        """
        [mark] = await self.append_many([entry])
        return mark

    async def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """
        Write ``entries`` in one commit; return once it is fsync'd.

        Raises:
            FeedbackOverloadedError: No room for them within ``full_wait`` seconds.
            FeedbackStorageError: The file cannot be written.
        """
        if not entries:
            return []
        if not self._started:
            await self.start()
        await self._wait_for_room(len(entries) - 1)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        now = time.time()
        marks = []
        for entry in entries:
            mark = self._next_mark()
            self._pending.append((mark, entry.item.id, encode_entry(entry), now))
            if len(self._cache) < self._memory_items:
                self._cache[mark] = entry
            marks.append(mark)
        self._waiters.append(waiter)
        self._ensure_committer()
        await waiter
        self._last_mark = max(self._last_mark, marks[-1])
        return marks

    def _arriving(self) -> int:
        return len(self._pending) + self._committing

    def _ensure_committer(self) -> None:
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit(), name="ai_feedback-spool")

    async def _commit(self) -> None:
        # Everything that arrived while the previous transaction was written goes into
        # the next one: one fsync for all of them. Completed entries are deleted in the
        # same transaction (a delete that a crash loses only replays stored items, which
        # the store ignores), or alone, without an fsync, when nothing is arriving.
        while self._pending or self._forgotten:
            # Let the submitters that are ready (those the last commit woke) append first.
            await asyncio.sleep(0)
            rows, waiters, forget = self._pending, self._waiters, self._forgotten
            self._pending, self._waiters, self._forgotten = [], [], []
            self._committing = len(rows)
            try:
                await self._run(self._write, rows, forget)
            except FeedbackStorageError as exc:
                if not await self._commit_failed(exc, rows, waiters, forget):
                    return
                continue
            self._committing = 0
            if not rows:
                continue
            await self._appended(rows[-1][0], len(rows))
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _commit_failed(
        self,
        exc: FeedbackStorageError,
        rows: list[tuple[int, str, bytes, float]],
        waiters: list[asyncio.Future[None]],
        forget: list[tuple[int, int]],
    ) -> bool:
        """
        Fail the submitters of ``rows``, keep ``forget`` for later; return whether to go on.
        """
        self._forgotten = forget + self._forgotten  # deleted with the next commit
        if not rows:
            _LOG.warning("Could not delete stored entries from %s: %s", self._path, exc)
            return bool(self._pending)  # arrived meanwhile: no other committer takes them
        self._committing = 0
        await self._appended(self._ready, 0)  # wakes those waiting for room
        for mark, *_ in rows:
            self._cache.pop(mark, None)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(FeedbackStorageError(str(exc)))
        return True

    async def _read(self, limit: int) -> list[Spooled]:
        batch: list[Spooled] = []
        mark, ready, cache = self._taken + 1, self._ready, self._cache
        while mark <= ready and len(batch) < limit:
            entry = cache.pop(mark, None)
            if entry is None:
                break
            batch.append(Spooled(mark, entry))
            mark += 1
        taken = mark - 1
        wanted = limit - len(batch)
        if wanted and mark <= ready:
            rows = await self._run(self._select, mark, ready, wanted)
            for seq, blob in rows:
                cached = cache.pop(seq, None)
                if cached is not None:
                    batch.append(Spooled(seq, cached))
                    continue
                try:
                    entry, _ = decode_entry(blob)
                except ValueError as exc:
                    await self._set_aside(seq, exc)
                    continue
                batch.append(Spooled(seq, entry, replayed=seq <= self._replayed_upto))
            taken = rows[-1][0] if len(rows) == wanted else ready
        self._taken = taken
        return batch

    async def _set_aside(self, seq: int, error: ValueError) -> None:
        _LOG.error(
            "Spooled entry %d in %s cannot be read (%s); moved to its dead letters",
            seq,
            self._path,
            error,
            extra={"spool": str(self._path), "seq": seq},
        )
        await self._run(self._dead, seq, "spool", repr(error), 0, delete=True)
        async with self._changed:
            self._depth -= 1
            self._changed.notify_all()

    async def _forget(self, batch: Sequence[Spooled]) -> None:
        self._forgotten.append((batch[0].mark, batch[-1].mark))
        self._ensure_committer()

    async def dead_letter(
        self, spooled: Spooled, stage: str, error: BaseException, attempts: int
    ) -> None:
        """
        Copy ``spooled`` to the file's ``dead_letters`` table with the reason.
        """
        await self._run(self._dead, spooled.mark, stage, repr(error), attempts, delete=False)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """
        Return the newest ``limit`` dead letters, newest first.
        """
        rows = await self._run(self._query, limit)
        letters = []
        for blob, stage, error, attempts, failed_at in rows:
            try:
                item: FeedbackItem | None = decode_entry(blob)[0].item
            except ValueError:
                item = None
            letters.append(DeadLetter(item, stage, error, attempts, failed_at))
        return letters

    async def delete_dead_letters(self, where: FeedbackFilter) -> int:
        """
        Remove the dead letters whose item matches ``where``; return how many.
        """
        return int(await self._run(self._delete_dead, where))

    async def status(self) -> SpoolStatus:
        """
        Depth, the age of the oldest entry, capacity and the number of dead letters.
        """
        oldest, dead = await self._run(self._summary)
        return SpoolStatus(
            kind="sqlite",
            location=str(self._path),
            durable=True,
            depth=self._depth,
            oldest_age_seconds=None if oldest is None else max(0.0, time.time() - oldest),
            capacity=self._capacity,
            dead_letters=dead,
        )

    async def aclose(self) -> None:
        """
        Finish the commit in progress, close the file and release it.

        Entries not completed stay in the file for the next start.
        """
        if self._committer is not None:
            # Shielded: a cancelled close must not cancel a commit its submitters await.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._committer)
        await self._mark_closed()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=True)
        self._started = False

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """
        Run ``fn`` in the spool's thread; its database errors become FeedbackStorageError.
        """
        if self._executor is None:
            msg = f"The spool {self._path} is closed."
            raise FeedbackStorageError(msg)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except (sqlite3.Error, OSError) as exc:
            raise self._error("use the spool", exc) from exc

    def _error(self, action: str, exc: BaseException) -> FeedbackStorageError:
        return FeedbackStorageError(f"Could not {action} in {self._path}: {exc}.")

    # Everything below runs in the spool's own thread.

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            msg = f"The spool {self._path} is closed."
            raise FeedbackStorageError(msg)
        return self._db

    def _open(self) -> tuple[int, int, int]:
        try:
            self._path, self._lock = _claim(self._base)
        except OSError as exc:
            msg = f"Could not open the spool {self._base}: {exc}."
            raise FeedbackStorageError(msg) from exc
        try:
            db = _connect(self._path)
            self._db = db
            _check_identity(db, self._path, self._identity)
            for orphan in _siblings(self._base):
                if orphan != self._path:
                    self._adopt(orphan)
            first, last, count = db.execute(
                "SELECT coalesce(min(seq), 1), coalesce(max(seq), 0), count(*) FROM entries"
            ).fetchone()
        except BaseException:
            self._close()
            raise
        return int(first), int(last), int(count)

    def _adopt(self, orphan: Path) -> None:
        lock = FileLock(f"{orphan}.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return  # a live process spools there
        db = self._connection()
        try:
            db.execute("ATTACH DATABASE ? AS orphan", (str(orphan),))
            try:
                row = db.execute("SELECT value FROM orphan.meta WHERE key = 'store'").fetchone()
                if row is None or row[0] != self._identity:
                    return
                db.execute("BEGIN IMMEDIATE")
                moved = db.execute(_ADOPT).rowcount
                db.execute(_ADOPT_DEAD)
                db.execute("DELETE FROM orphan.entries")
                db.execute("DELETE FROM orphan.dead_letters")
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                db.execute("DETACH DATABASE orphan")
            if moved:
                _LOG.info(
                    "Adopted %d feedback item(s) from the orphaned spool %s",
                    moved,
                    orphan,
                    extra={"spool": str(self._path), "orphan": str(orphan), "items": moved},
                )
        except sqlite3.Error:
            _LOG.warning("Could not adopt the spool %s", orphan, exc_info=True)
        finally:
            lock.release()

    def _write(
        self, rows: list[tuple[int, str, bytes, float]], forget: list[tuple[int, int]]
    ) -> None:
        db = self._connection()
        if not rows:  # only deletes: losing them to a power cut costs nothing
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            if forget:
                db.executemany(_DELETE, forget)
            if rows:
                self._insert(db, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            if not rows:
                db.execute("PRAGMA synchronous=FULL")

    def _insert(self, db: sqlite3.Connection, rows: list[tuple[int, str, bytes, float]]) -> None:
        db.executemany(_INSERT, rows)

    def _select(self, first: int, last: int, limit: int) -> list[tuple[int, bytes]]:
        return self._connection().execute(_SELECT, (first, last, limit)).fetchall()

    def _dead(self, seq: int, stage: str, error: str, attempts: int, *, delete: bool) -> None:
        db = self._connection()
        with db:  # one transaction
            db.execute("BEGIN IMMEDIATE")
            db.execute(_DEAD, (stage, error[:2000], attempts, time.time(), seq))
            if delete:
                db.execute("DELETE FROM entries WHERE seq = ?", (seq,))

    def _delete_dead(self, where: FeedbackFilter) -> int:
        db = self._connection()
        doomed = []
        for row_id, blob in db.execute("SELECT id, entry FROM dead_letters"):
            try:
                item = decode_entry(blob)[0].item
            except ValueError:
                continue
            if where.matches(item):
                doomed.append((row_id,))
        with db:
            db.executemany("DELETE FROM dead_letters WHERE id = ?", doomed)
        return len(doomed)

    def _query(self, limit: int) -> list[tuple[bytes, str, str, int, float]]:
        return (
            self._connection()
            .execute(
                "SELECT entry, stage, error, attempts, failed_at FROM dead_letters "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )

    def _summary(self) -> tuple[float | None, int]:
        db = self._connection()
        oldest = db.execute("SELECT enqueued_at FROM entries ORDER BY seq LIMIT 1").fetchone()
        (dead,) = db.execute("SELECT count(*) FROM dead_letters").fetchone()
        return (None if oldest is None else float(oldest[0])), int(dead)

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        for statement in _SCHEMA:
            db.execute(statement)
    except (sqlite3.Error, OSError) as exc:
        msg = f"Could not open the spool {path}: {exc}."
        raise FeedbackStorageError(msg) from exc
    return db


def _check_identity(db: sqlite3.Connection, path: Path, identity: str) -> None:
    row = db.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()
    if row is not None and row[0] != identity:
        (count,) = db.execute("SELECT count(*) FROM entries").fetchone()
        if count:
            msg = (
                f"the spool {path} holds {count} item(s) for the store {row[0]}, not for "
                f"{identity}; point spool_url at another file, or run the application that "
                f"writes to {row[0]} so that it drains them"
            )
            raise FeedbackConfigurationError("spool_url", msg)
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('store', ?), ('format', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (identity, _FORMAT),
    )


def _member(base: Path, n: int) -> Path:
    return base if n == 0 else base.with_name(f"{base.name}.{n}")


def _claim(base: Path) -> tuple[Path, FileLock]:
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(MAX_PROCESSES):
        path = _member(base, n)
        lock = FileLock(f"{path}.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue
        return path, lock
    msg = (
        f"all {MAX_PROCESSES} spool files next to {base} are held by live processes; "
        "give these processes their own spool_url, or use a nats:// spool"
    )
    raise FeedbackConfigurationError("spool_url", msg)


def _siblings(base: Path) -> list[Path]:
    return [_member(base, n) for n in range(MAX_PROCESSES) if _member(base, n).exists()]


def leftover_entries(path: Path) -> tuple[str, int] | None:
    """
    Return the store the unheld spool file ``path`` feeds and how many entries it holds.

    None when a live process holds the file, it is empty or it cannot be read.
    """
    lock = FileLock(f"{path}.lock", timeout=0)
    try:
        lock.acquire()
    except (Timeout, OSError):
        return None  # a live process spools there and drains it
    # Released at once: a process starting now must find the file free to claim it.
    lock.release()
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()
            found = db.execute("SELECT 1 FROM entries LIMIT 1").fetchone()
            (count,) = db.execute("SELECT count(*) FROM entries").fetchone() if found else (0,)
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return (str(row[0]) if row else "an unknown store", int(count)) if count else None


def members(base: Path) -> list[Path]:
    """
    The files of the spool family named after ``base`` that exist.
    """
    return _siblings(base)
