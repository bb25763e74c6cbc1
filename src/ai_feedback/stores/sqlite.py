"""
The SQLite store: embedded and durable, one database file, no server.

One `aiosqlite` connection (its own thread) in WAL mode with ``synchronous=FULL``:
readers never wait for the writer, and a commit is fsync'd before it returns. Every
batch is one transaction written with ``executemany``; SPEC §7 measured that at about
20x the rate of one commit per item.

The schema is versioned (`MIGRATIONS`, recorded in ``schema_version``); `open` applies
the missing migrations. `migrate` (also ``python -m ai_feedback.stores.sqlite migrate
URL``) runs them alone. The SQL each query runs is a module constant, so tests can
``EXPLAIN`` exactly it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self, cast

import aiosqlite
import orjson

from ai_feedback._models import (
    Cursor,
    Deleted,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
    check_cursor,
    coerce_type,
    trusted_item,
)
from ai_feedback._validation import DEFAULT_LIMITS, Limits, check_id
from ai_feedback.exceptions import (
    FeedbackConflictError,
    FeedbackStorageError,
    FeedbackValidationError,
)
from ai_feedback.result import Err, Ok, Result
from ai_feedback.stores._common import (
    ClosingContext,
    check_bucket,
    check_deletion,
    check_filter,
    check_item,
    check_limit,
    conflicts,
    cutoff,
    fold_series,
    foreign,
    last_of_each_id,
    rating_stats_from_counts,
    scan_pages,
    stats_filters,
)
from ai_feedback.stores._deletion_log import (
    KEEP_SECONDS,
    check_accepted,
    last_accepted,
    logged,
    withdrawn,
)
from ai_feedback.stores._sqlite_schema import (
    AGGREGATE_SQL,
    DEFAULT_BUSY_TIMEOUT_MS,
    FIND_BY_SESSION_SQL,
    FIND_BY_TYPE_SQL,
    GET_RAW_SQL,
    GET_SQL,
    HOUR_US,
    INSERT_RAW_SQL,
    INSERT_SQL,
    ITEM_COLUMNS,
    LATEST_VERSION,
    MIGRATIONS,
    OTHER_TYPES,
    PRAGMAS,
    ROLLUP_ADD_SQL,
    ROLLUP_AGGREGATE_SQL,
    ROLLUP_OF_ITEMS_SQL,
    ROLLUP_REMOVE_SQL,
    ROLLUP_SERIES_SQL,
    ROLLUP_STATS_SQL,
    STATS_SQL,
    Migration,
    apply_migrations,
    connect,
    main,
    migrate,
    parse_target,
    rollback,
)
from ai_feedback.stores.database import DatabaseFeedbackStore

__all__ = [
    "AGGREGATE_SQL",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "FIND_BY_SESSION_SQL",
    "FIND_BY_TYPE_SQL",
    "LATEST_VERSION",
    "MIGRATIONS",
    "PRAGMAS",
    "STATS_SQL",
    "Migration",
    "SQLiteFeedbackStore",
    "main",
    "migrate",
]

_RATING = FeedbackType.RATING
_TYPE_OF = {t.value: t for t in FeedbackType}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_dumps = orjson.dumps
_loads = orjson.loads
_Row = tuple[Any, ...]
_RAW_PAGE = 5000
# One JSON line per item, the same bytes as FeedbackItem.to_dict() through orjson: the
# JSON columns hold orjson's text verbatim; created_at (microseconds, floored to whole
# seconds) is written as Python's isoformat in UTC, without a fraction at a whole second.
_RAW_LINE_SQL = (
    """SELECT '{"id":' || json_quote(id) || ',"feedback_type":"' || feedback_type """
    """|| '","value":' || value || ',"context":' || context || ',"metadata":' || metadata """
    """|| ',"created_at":"' || strftime('%Y-%m-%dT%H:%M:%S', """
    "(created_at - (created_at % 1000000 + 1000000) % 1000000) / 1000000, 'unixepoch') "
    "|| CASE WHEN (created_at % 1000000 + 1000000) % 1000000 = 0 THEN '' "
    "ELSE printf('.%06d', (created_at % 1000000 + 1000000) % 1000000) END "
    """|| '+00:00"}', created_at, id FROM feedback {where}"""
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
_MAX_INTEGER = 2**63 - 1  # SQLite's largest; a larger LIMIT cannot even be bound
_IDS_PER_QUERY = 500


class SQLiteFeedbackStore(ClosingContext):
    """
    A `FeedbackStoreProtocol` and `SupportsStats` backed by one SQLite file.

    Create it with `open` and close it with `aclose` (or ``async with``). Writes return
    ``Err(FeedbackStorageError)`` when the database refuses them (locked, read-only, disk
    full) and raise only for bad arguments. Operations on one store run one at a time,
    so a batch's transaction never interleaves with another call.
    """

    def __init__(
        self, db: aiosqlite.Connection, path: str, limits: Limits, busy_timeout_ms: int
    ) -> None:
        # Private: `open` connects and migrates first.
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._limits = limits
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        url_or_path: str | os.PathLike[str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Self:
        """
        Open (creating if needed) the database and bring its schema up to date.

        Args:
            url_or_path: ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
                ``sqlite:///:memory:`` or a plain path. URL query parameters ``mode``,
                ``cache``, ``immutable``, ``nolock`` and ``vfs`` go to SQLite
                (``?mode=ro`` opens read-only).
            limits: Size limits checked by ``save`` and ``save_many``.
            busy_timeout_ms: How long a write waits for another connection's lock.

        Raises:
            FeedbackValidationError: The URL or an option is malformed.
            FeedbackStorageError: The file cannot be opened or migrated.
        """
        path, uri = parse_target(url_or_path)
        db = await connect(path, uri, busy_timeout_ms)
        try:
            await apply_migrations(db, path, LATEST_VERSION)
        except BaseException:
            await db.close()
            raise
        return cls(db, path, limits, busy_timeout_ms)

    @property
    def path(self) -> str:
        """
        The database file's absolute path (``:memory:`` for an in-memory database).
        """
        return self._path

    @property
    def location(self) -> str | None:
        """
        ``sqlite:///<absolute path>``, or None for an in-memory database.
        """
        return None if self._path == ":memory:" else f"sqlite:///{self._path}"

    def __repr__(self) -> str:
        state = "closed" if self._db is None else "open"
        return f"<SQLiteFeedbackStore path={self._path!r} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_db", None) is not None:
            warnings.warn(f"{self!r} was never closed", ResourceWarning, stacklevel=1)

    async def aclose(self) -> None:
        """
        Close the connection; closing twice is harmless.
        """
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Store ``feedback``; a known id changes nothing and returns ``Ok(id)``.

        Raises:
            FeedbackValidationError: ``feedback`` is not a FeedbackItem or is over a limit.
        """
        check_item(feedback, self._limits)
        error = await self._write([feedback], [], "save feedback")
        return Ok(feedback.id) if error is None else Err(error)

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Store ``items`` in one transaction; return their ids in order.

        Known ids, and repeats of an id within the batch, are stored once. On failure
        nothing of the batch is stored.

        Args:
            items: The batch; every element is validated before anything is written.
            raw_payloads: Item id -> the payload exactly as received (a JSON value),
                kept for audit in the same transaction (the first one kept per id wins).

        Raises:
            FeedbackValidationError: An element is invalid, or ``raw_payloads`` names an
                id outside the batch or holds a value that is not JSON.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        raw_rows = _encode_raw(raw_payloads, batch) if raw_payloads else []
        if not batch:
            return Ok([])
        error = await self._write(batch, raw_rows, "save a batch of feedback")
        return Ok([item.id for item in batch]) if error is None else Err(error)

    async def replace_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Store each item, replacing the item stored under its id (an update); return the ids.

        One transaction: the replaced items leave the statistics rollup and their raw
        payloads go with them. An id given twice keeps its last item; an item stored
        under the id with another owner (``context.owner_id``) is not replaced: the
        result is ``Err(FeedbackConflictError)`` and nothing is stored.

        Raises:
            FeedbackValidationError: An element or ``raw_payloads`` is invalid.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        raw_rows = _encode_raw(raw_payloads, batch) if raw_payloads else []
        if not batch:
            return Ok([])
        error = await self._write(batch, raw_rows, "replace feedback", replace=True)
        return Ok([item.id for item in batch]) if error is None else Err(error)

    async def save_accepted(
        self,
        items: Sequence[FeedbackItem],
        accepted_at: Sequence[float],
        *,
        raw_payloads: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Result[list[str], Exception]:
        """
        Store ``items`` like `save_many`, leaving out those a later logged deletion matches.

        Args:
            items: The batch.
            accepted_at: When each item was accepted (seconds since the epoch).
            raw_payloads: As for `save_many`.
            replace: Replace the items stored under their ids, as `replace_many` does.

        Returns:
            ``Ok`` with the ids left out: items that a deletion made at or after their
            acceptance matches (see `SupportsDeletionLog`).

        Raises:
            FeedbackValidationError: An element is invalid, or ``accepted_at`` does not
                hold one time per item.
        """
        batch = list(items)
        times = check_accepted(batch, accepted_at)
        for item in batch:
            check_item(item, self._limits)
        raw_rows = _encode_raw(raw_payloads, batch) if raw_payloads else []
        if not batch:
            return Ok([])
        gone: set[str] = set()
        error = await self._write(
            batch,
            raw_rows,
            "save a batch of feedback",
            (last_accepted(batch, times), gone),
            replace=replace,
        )
        return Ok(sorted(gone)) if error is None else Err(error)

    async def get(self, item_id: str) -> FeedbackItem | None:
        """
        Return the item with ``item_id``, or None.
        """
        rows = await self._fetch(GET_SQL, (check_id("item_id", item_id),))
        return _decode(rows[0]) if rows else None

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return the raw payload stored with the item ``item_id``, or None.
        """
        rows = await self._fetch(GET_RAW_SQL, (check_id("item_id", item_id),))
        return _loads(rows[0][0]) if rows else None

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items of ``session_id``, newest first.
        """
        rows = await self._fetch(FIND_BY_SESSION_SQL, (check_id("session_id", session_id),))
        return [_decode(row) for row in rows]

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.
        """
        kind = coerce_type(feedback_type)
        check_limit(limit)
        rows = await self._fetch(FIND_BY_TYPE_SQL, (kind.value, min(limit, _MAX_INTEGER)))
        return [_decode(row) for row in rows]

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackSummary:
        """
        Summarize the items created in the last ``window_hours``, optionally filtered.
        """
        sql, params = _window_query(
            ROLLUP_AGGREGATE_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        [(ratings, average, *others)] = await self._fetch(sql, params)
        counts = {_RATING.value: ratings} | {
            t: int(n) for t, n in zip(OTHER_TYPES, others, strict=True)
        }
        return FeedbackSummary(sum(counts.values()), average, counts)

    async def stats(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackStats:
        """
        Return the window's statistics with rating percentiles and a per-model breakdown.
        """
        sql, params = _window_query(
            ROLLUP_STATS_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        return _stats(
            await self._fetch(sql, params),
            window_hours=window_hours,
            model=model,
            provider=provider,
        )

    async def series(
        self,
        *,
        window_hours: float = 24,
        bucket: SeriesBucket = "hour",
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> list[SeriesPoint]:
        """
        Return the window's items per whole hour or day, oldest first (empty buckets left out).
        """
        bucket = check_bucket(bucket)
        sql, params = _window_query(
            ROLLUP_SERIES_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        rows = await self._fetch(sql, params)
        return fold_series(
            ((_EPOCH + _MICROSECOND * start, n, rated, total) for start, n, rated, total in rows),
            bucket,
        )

    async def query(
        self,
        where: FeedbackFilter | None = None,
        *,
        limit: int = 100,
        before: Cursor | None = None,
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items matching ``where``, newest first, after ``before``.

        ``before`` is the (``created_at``, ``id``) of the last item of the previous page.
        """
        where = check_filter(where)
        check_limit(limit)
        cursor = check_cursor(before)
        clauses, params = _conditions(where)
        if cursor is not None:
            clauses.append("(created_at, id) < (?, ?)")
            params += [_micros(cursor[0]), cursor[1]]
        condition = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        sql = (
            f"SELECT {ITEM_COLUMNS} FROM feedback {condition}"  # noqa: S608 - columns are ours
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        rows = await self._fetch(sql, [*params, min(limit, _MAX_INTEGER)])
        return [_decode(row) for row in rows]

    def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield every item matching ``where``, newest first, in constant memory (keyset pages).
        """
        return scan_pages(self.query, where, page_size)

    async def raw_lines(self, where: FeedbackFilter | None = None) -> AsyncIterator[bytes]:
        """
        Yield the raw export of the matching items as JSON Lines, built by SQLite.

        Newest first, a keyset page at a time (writes go on between pages); the bytes
        equal ``FeedbackItem.to_dict()`` of each item through orjson.

        Raises:
            FeedbackStorageError: The database failed.
        """
        clauses, params = _conditions(check_filter(where))
        before: tuple[int, str] | None = None
        while True:
            page_clauses = list(clauses)
            page_params = list(params)
            if before is not None:
                page_clauses.append("(created_at, id) < (?, ?)")
                page_params += before
            condition = f"WHERE {' AND '.join(page_clauses)} " if page_clauses else ""
            query = _RAW_LINE_SQL.replace("{where}", condition)
            rows = await self._fetch(query, [*page_params, _RAW_PAGE])
            if rows:
                yield ("\n".join(row[0] for row in rows) + "\n").encode()
            if len(rows) < _RAW_PAGE:
                return
            before = (rows[-1][1], rows[-1][2])

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Remove the items matching ``where`` (and their raw payloads), in one transaction.

        Args:
            where: Which items; it must set at least one field.
            limit: At most this many items, the oldest first (for bounded batches).

        Raises:
            FeedbackValidationError: ``where`` is empty or ``limit`` is not positive.
            FeedbackStorageError: The database refused (locked, read-only).
        """
        where = check_deletion(where)
        clauses, params = _conditions(where)
        chosen = f"SELECT id FROM feedback WHERE {' AND '.join(clauses)}"  # noqa: S608
        if limit is not None:
            check_limit(limit)
            chosen += f" ORDER BY created_at, id LIMIT {min(limit, _MAX_INTEGER)}"
        async with self._transaction("delete feedback") as db:
            if limit is None:  # logged, so that no other process writes such items later
                criteria, deleted_at = logged(where)
                await db.execute(
                    "DELETE FROM feedback_deletion WHERE deleted_at < ?",
                    (deleted_at - KEEP_SECONDS,),
                )
                await db.execute(
                    "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES (?, ?)",
                    (criteria, deleted_at),
                )
            await _clear_doomed(db)
            await db.execute(f"INSERT INTO temp.doomed {chosen}", params)
            return await _delete_doomed(db)

    async def rebuild_rollup(self) -> int:
        """
        Count the statistics rollup again from the stored items; return the items counted.

        The store keeps the rollup exact as it writes and deletes; this is for rows put
        into the ``feedback`` table behind its back (a bulk load in SQL). One
        transaction: readers see the old rollup or the new one, writers wait.

        Raises:
            FeedbackStorageError: The database refused (locked, read-only).
        """
        async with self._transaction("rebuild the statistics rollup") as db:
            await db.execute("DELETE FROM feedback_rollup")
            await db.execute(f"INSERT INTO feedback_rollup {ROLLUP_OF_ITEMS_SQL.format(where='')}")
            [(counted,)] = await db.execute_fetchall(
                "SELECT coalesce(sum(items), 0) FROM feedback_rollup"
            )
        return int(counted)

    @contextlib.asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """
        Run one write transaction under the store's lock; roll it back on any error.

        Raises:
            FeedbackStorageError: The database refused (locked, read-only, full).
        """
        async with self._lock:
            db = self._connection()
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                await rollback(db)
                raise self._error(action, exc) from exc
            except BaseException:
                await rollback(db)
                raise

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            msg = f"The SQLite store {self._path!r} is closed; open a new one."
            raise FeedbackStorageError(msg)
        return self._db

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[_Row]:
        async with self._lock:
            db = self._connection()
            try:
                rows = await db.execute_fetchall(sql, params)
            except sqlite3.Error as exc:
                raise self._error("read feedback", exc) from exc
        return cast("list[_Row]", rows)

    async def _write(
        self,
        batch: Sequence[FeedbackItem],
        raw_rows: list[_Row],
        action: str,
        accepted: tuple[dict[str, float], set[str]] | None = None,
        *,
        replace: bool = False,
    ) -> FeedbackStorageError | None:
        """
        Write ``batch`` in one transaction; return the error, or None.

        With ``accepted`` (the items' acceptance times, and a set that receives the ids
        left out), items a later logged deletion matches are not written; the log is read
        inside the write transaction, which a deletion cannot run beside. With
        ``replace``, the items stored under the batch's ids are removed first.
        """
        async with self._lock:
            try:
                db = self._connection()
            except FeedbackStorageError as exc:
                return exc
            try:
                await db.execute("BEGIN IMMEDIATE")
                batch, raw_rows = await _unless_deleted(db, batch, raw_rows, accepted)
                if replace:
                    batch = last_of_each_id(batch)
                    raw_rows = list({row[0]: row for row in raw_rows}.values())
                    taken = await _remove_replaced(db, batch)
                    if taken is not None:
                        await rollback(db)
                        return taken
                rows = _encode(batch)
                cursor = await db.executemany(INSERT_SQL, rows)
                if cursor.rowcount < len(rows):  # known ids: the same items, or conflicts
                    conflict = await _conflict(db, batch)
                    await rollback(db)
                    if conflict is not None:
                        return conflict
                    # Only the rows not stored yet may enter the rollup: insert those alone.
                    await db.execute("BEGIN IMMEDIATE")
                    batch, raw_rows = await _unless_deleted(db, batch, raw_rows, accepted)
                    rows = await _new_rows(db, _encode(batch))
                    await db.executemany(INSERT_SQL, rows)
                await db.executemany(ROLLUP_ADD_SQL, _rollup(rows))
                if raw_rows:
                    await db.executemany(INSERT_RAW_SQL, raw_rows)
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                await rollback(db)
                error = self._error(action, exc)
                error.__cause__ = exc
                return error
            except BaseException:  # cancelled mid-transaction: never leave it open
                await rollback(db)
                raise
        return None

    def _error(self, action: str, exc: sqlite3.Error) -> FeedbackStorageError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        hint = {
            sqlite3.SQLITE_BUSY: "another connection holds the write lock; retry later or "
            f"raise busy_timeout_ms (now {self._busy_timeout_ms})",
            sqlite3.SQLITE_READONLY: "the database is read-only (opened with mode=ro, or "
            "the file or its directory is not writable)",
            sqlite3.SQLITE_FULL: "the disk is full",
        }.get(code, "see the chained SQLite error")
        msg = f"Could not {action} in SQLite database {self._path!r}: {exc} ({hint})."
        return FeedbackStorageError(msg)


async def _remove_replaced(
    db: aiosqlite.Connection, batch: Sequence[FeedbackItem]
) -> FeedbackConflictError | None:
    """
    Remove the rows ``batch`` replaces (and their rollup counts and raw payloads).

    Returns the conflict, removing nothing, when a row belongs to another owner.
    """
    ids = [item.id for item in batch]
    owners: dict[str, object] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT id, owner_id FROM feedback WHERE id IN ({marks})"  # noqa: S608
        owners |= {row[0]: row[1] for row in await db.execute_fetchall(query, chunk)}
    taken = foreign(batch, owners)
    if taken:
        return FeedbackConflictError(taken)
    if owners:
        await _clear_doomed(db)
        await db.executemany("INSERT INTO temp.doomed VALUES (?)", [(i,) for i in owners])
        await _delete_doomed(db)
    return None


async def _clear_doomed(db: aiosqlite.Connection) -> None:
    """
    Make the connection's ``temp.doomed`` table of ids to delete, empty.
    """
    await db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
    await db.execute("DELETE FROM temp.doomed")


async def _delete_doomed(db: aiosqlite.Connection) -> Deleted:
    """
    Delete the items in ``temp.doomed``, their raw payloads and their rollup counts.
    """
    rollup = await db.execute(ROLLUP_REMOVE_SQL)
    await db.execute("DELETE FROM feedback_rollup WHERE items <= 0")
    raw = await db.execute("DELETE FROM raw_payload WHERE item_id IN (SELECT id FROM temp.doomed)")
    items = await db.execute("DELETE FROM feedback WHERE id IN (SELECT id FROM temp.doomed)")
    return Deleted(items=items.rowcount, raw_payloads=raw.rowcount, rollup_rows=rollup.rowcount)


async def _unless_deleted(
    db: aiosqlite.Connection,
    batch: Sequence[FeedbackItem],
    raw_rows: list[_Row],
    accepted: tuple[dict[str, float], set[str]] | None,
) -> tuple[Sequence[FeedbackItem], list[_Row]]:
    """
    Return ``batch`` and ``raw_rows`` without the items a later logged deletion matches.

    Their ids are added to ``accepted``'s set. Runs inside the write transaction.
    """
    if accepted is None or not batch:
        return batch, raw_rows
    times, gone = accepted
    log = await db.execute_fetchall(
        "SELECT criteria, deleted_at FROM feedback_deletion WHERE deleted_at >= ?",
        (min(times.values()),),
    )
    if not log:
        return batch, raw_rows
    deletions = [(criteria, float(deleted_at)) for criteria, deleted_at in log]
    gone |= withdrawn(batch, [times[item.id] for item in batch], deletions)
    kept = [item for item in batch if item.id not in gone]
    return kept, [row for row in raw_rows if row[0] not in gone]


async def _new_rows(db: aiosqlite.Connection, rows: list[_Row]) -> list[_Row]:
    """
    Return the rows whose id is not stored yet, the first of each repeated id.
    """
    unique = list({row[0]: row for row in reversed(rows)}.values())[::-1]
    stored: set[str] = set()
    for start in range(0, len(unique), _IDS_PER_QUERY):
        chunk = [row[0] for row in unique[start : start + _IDS_PER_QUERY]]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT id FROM feedback WHERE id IN ({marks})"  # noqa: S608
        stored.update(row[0] for row in await db.execute_fetchall(query, chunk))
    return [row for row in unique if row[0] not in stored]


def _rollup(rows: Sequence[_Row]) -> list[tuple[Any, ...]]:
    """
    Return the rollup increments of newly stored rows (`ROLLUP_ADD_SQL` parameters).
    """
    counts: dict[tuple[Any, ...], int] = {}
    for row in rows:
        created = row[11]
        key = (
            created - created % HOUR_US,  # floor, like the SQL's bucket
            row[8] or "",
            row[9] or "",
            row[10] or "",
            row[1],
            row[3] if row[3] is not None else 0.0,
        )
        counts[key] = counts.get(key, 0) + 1
    return [(*key, n) for key, n in counts.items()]


async def _conflict(
    db: aiosqlite.Connection, batch: Sequence[FeedbackItem]
) -> FeedbackConflictError | None:
    """
    Return the conflict between ``batch`` and the rows stored under its ids, if any.
    """
    ids = list(dict.fromkeys(item.id for item in batch))
    stored: dict[str, FeedbackItem] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT {ITEM_COLUMNS} FROM feedback WHERE id IN ({marks})"  # noqa: S608
        for row in await db.execute_fetchall(query, chunk):
            stored[row[0]] = _decode(tuple(row))
    clash = conflicts(batch, stored)
    return FeedbackConflictError(clash) if clash else None


def _window_query(
    queries: Mapping[tuple[bool, ...], str], window_hours: float, *filters: object
) -> tuple[str, list[Any]]:
    """
    Return the query for the filters given and its parameters.

    ``filters``: model, provider, owner and type (None when not given).
    """
    since = cutoff(window_hours)
    given = stats_filters(*filters)
    values = [f for f in given if f is not None]
    params = [*_partial_hour(since, values), *values]
    return queries[tuple(f is not None for f in given)], params


def _partial_hour(since: int, filters: list[Any]) -> list[Any]:
    """
    The rollup's first hour and the filters (twice), then the sign and range of the items.

    The window's first hour is partial: either the rollup from the next hour plus the
    items from ``since`` to it, or the rollup from ``since``'s hour minus the items of
    that hour before ``since``, whichever reads fewer items (microseconds since the epoch).
    """
    into = since % HOUR_US
    hour = since - into
    if into < HOUR_US // 2:
        return [hour, *filters, hour, *filters, -1, hour, since]
    after = hour + HOUR_US
    return [after, *filters, after, *filters, 1, since, after]


def _conditions(where: FeedbackFilter) -> tuple[list[str], list[Any]]:
    """
    The SQL conditions and parameters of ``where`` (column names are ours, not the caller's).
    """
    clauses: list[str] = []
    params: list[Any] = []
    if where.item_id is not None:
        clauses.append("id = ?")
        params.append(where.item_id)
    if where.feedback_type is not None:
        clauses.append("feedback_type = ?")
        params.append(where.feedback_type.value)
    for column, value in where.context_filters().items():
        clauses.append(f"{column} = ?")
        params.append(value)
    for clause, moment in (("created_at >= ?", where.since), ("created_at < ?", where.until)):
        if moment is not None:
            clauses.append(clause)
            params.append(_micros(moment))
    return clauses, params


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _encode(items: Sequence[FeedbackItem]) -> list[_Row]:
    """
    Return one row tuple per item, in the column order of ``INSERT_SQL``.

    Raises:
        FeedbackValidationError: A value orjson cannot encode (a lone surrogate in a text).
    """
    rows: list[_Row] = []
    append = rows.append
    try:
        for item in items:
            context = item.context
            get = context.get
            value = item.value
            kind = item.feedback_type
            append(
                (
                    item.id,
                    kind.value,
                    _dumps(value).decode(),
                    float(value) if kind is _RATING else None,
                    _dumps(context).decode(),
                    _dumps(item.metadata).decode(),
                    get("trace_id"),
                    get("session_id"),
                    get("model"),
                    get("provider"),
                    get("owner_id"),
                    _micros(item.created_at),
                )
            )
    except orjson.JSONEncodeError as exc:
        raise FeedbackValidationError("feedback", f"cannot be stored in SQLite: {exc}") from exc
    return rows


def _encode_raw(payloads: Mapping[str, Any], batch: Sequence[FeedbackItem]) -> list[_Row]:
    if not isinstance(payloads, Mapping):
        raise FeedbackValidationError("raw_payloads", "must be a dict of item id -> payload")
    unknown = payloads.keys() - {item.id for item in batch}
    if unknown:
        msg = "must only name ids of items in the batch"
        raise FeedbackValidationError("raw_payloads", msg, min(unknown))
    try:
        return [(item_id, _dumps(payload).decode()) for item_id, payload in payloads.items()]
    except orjson.JSONEncodeError as exc:
        raise FeedbackValidationError("raw_payloads", f"must hold JSON values: {exc}") from exc


def _decode(row: _Row) -> FeedbackItem:
    """
    Build an item from a row of `GET_SQL`'s columns without validating it again.
    """
    item_id, kind, value, context, metadata, created_at = row
    return trusted_item(
        _TYPE_OF[kind],
        _loads(value),
        _loads(context),
        _loads(metadata),
        item_id,
        _EPOCH + _MICROSECOND * created_at,
    )


def _stats(
    rows: Iterable[_Row], *, window_hours: float, model: str | None, provider: str | None
) -> FeedbackStats:
    """
    Build `FeedbackStats` from `STATS_SQL` rows, with the rules of ``_common.rating_stats``.
    """
    counts = dict.fromkeys(_TYPE_OF, 0)
    histogram: dict[float, int] = {}
    rating_sum = 0.0
    models: dict[str, list[Any]] = {}  # model -> [count, rating count, rating sum]
    for row_model, rating, count, total, *others in rows:
        if rating is None:
            for kind, n in zip(OTHER_TYPES, others, strict=True):
                counts[kind] += int(n)
        else:
            counts[_RATING.value] += count
            histogram[rating] = histogram.get(rating, 0) + count
            rating_sum += total
        if row_model is not None:
            acc = models.setdefault(row_model, [0, 0, 0.0])
            acc[0] += count
            if rating is not None:
                acc[1] += count
                acc[2] += total
    n = counts[_RATING.value]
    summary = FeedbackSummary(sum(counts.values()), rating_sum / n if n else None, counts)
    by_model = {
        name: {"count": count, "average_rating": total / rated if rated else None}
        for name, (count, rated, total) in sorted(models.items())
    }
    return rating_stats_from_counts(
        summary,
        histogram,
        window_hours=window_hours,
        model=model,
        provider=provider,
        by_model=by_model,
    )


DatabaseFeedbackStore.register(SQLiteFeedbackStore)

if __name__ == "__main__":  # pragma: no cover - run by a subprocess in the tests
    sys.exit(main())
