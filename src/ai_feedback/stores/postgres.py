"""
The PostgreSQL store: for production, and for many processes sharing one database.

An `asyncpg` connection pool whose connections set ``search_path`` to the store's schema
(so one database can hold many independent stores) and exchange ``jsonb`` as orjson
bytes. A batch is one transaction: ``COPY`` into a per-connection temporary staging table,
then ``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING``; SPEC §7 measured ``COPY`` at
about 40x the rate of one awaited ``INSERT`` per item.

The pool heals itself: a call that finds the server gone returns ``Err`` (writes) or
raises `FeedbackStorageError` (reads), the broken connection is dropped, and the next
call connects again.

The schema is versioned (`MIGRATIONS`, recorded in ``schema_version``); `open` applies
the missing migrations under a transaction-level advisory lock, so processes that start
together do not race. `migrate` (also ``python -m ai_feedback.stores.postgres migrate
URL``) runs them alone. The SQL each query runs is a module constant, so tests can
``EXPLAIN`` exactly it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import urlsplit

import asyncpg
import orjson

from ai_feedback._models import (
    DISTRIBUTION_MAX_VALUES,
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
from ai_feedback.stores import _pg_schema as sql
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
    number,
    same_item,
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
from ai_feedback.stores._pg_schema import (
    AGGREGATE_SQL,
    DB_ERRORS,
    DEFAULT_CONNECT_TIMEOUT,
    FIND_BY_SESSION_SQL,
    FIND_BY_TYPE_SQL,
    LATEST_VERSION,
    MIGRATIONS,
    ROLLUP_AGGREGATE_SQL,
    ROLLUP_STATS_SQL,
    STATS_SQL,
    Connection,
    Migration,
    main,
    migrate,
)
from ai_feedback.stores.database import DatabaseFeedbackStore

__all__ = [
    "AGGREGATE_SQL",
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "FIND_BY_SESSION_SQL",
    "FIND_BY_TYPE_SQL",
    "LATEST_VERSION",
    "MIGRATIONS",
    "STATS_SQL",
    "Migration",
    "PostgresFeedbackStore",
    "main",
    "migrate",
]

_LOG = logging.getLogger("ai_feedback")
DEFAULT_COMMAND_TIMEOUT = 30.0
"""Seconds a statement (or taking and returning a pooled connection) may last."""

_RATING = FeedbackType.RATING
_TYPE_OF = {t.value: t for t in FeedbackType}
_PERCENTILES = ("p50", "p90", "p99")
_MAX_BIGINT = 2**63 - 1  # the largest LIMIT PostgreSQL takes
_dumps = orjson.dumps
_loads = orjson.loads
_Row = tuple[Any, ...]
# Errors after which a connection cannot be trusted: it is terminated, not reused.
_BROKEN = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    OSError,
    TimeoutError,
)


class PostgresFeedbackStore(ClosingContext):
    """
    A `FeedbackStoreProtocol` and `SupportsStats` backed by a PostgreSQL schema.

    Create it with `open` and close it with `aclose` (or ``async with``). ``save`` and
    ``save_many`` return ``Err(FeedbackStorageError)`` when the database fails (down,
    timed out, constraint) and raise only for bad arguments; queries raise
    `FeedbackStorageError`. Strings holding NUL characters cannot be stored (PostgreSQL
    text and ``jsonb`` refuse them): such a write returns ``Err``.

    Each connection keeps a temporary staging table, so the store needs session-level
    connections: the server itself, or a proxy in session-pooling mode.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        target: str,
        schema: str | None,
        limits: Limits,
        command_timeout: float,
        database: str = "",
    ) -> None:
        self._pool: asyncpg.Pool[asyncpg.Record] | None = pool
        self._database = database
        self._target = target
        self._schema = schema
        self._limits = limits
        self._timeout = command_timeout

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        limits: Limits = DEFAULT_LIMITS,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> Self:
        """
        Connect a pool to ``url``, bring the schema up to date and return the store.

        Args:
            url: ``postgresql://user[:password]@host[:port]/database``.
            limits: Size limits checked by ``save`` and ``save_many``.
            schema: The schema holding the store's tables, created when missing; None
                uses the connection's default ``search_path`` (normally ``public``).
                A plain identifier: letters, digits and ``_``, at most 63 characters.
            min_size: Connections kept open.
            max_size: Most connections open at once.
            command_timeout: Seconds a statement, or waiting for a pooled connection,
                may take before the call fails.
            connect_timeout: Seconds establishing a connection may take.

        Raises:
            FeedbackValidationError: The URL, the schema name or an option is malformed.
            FeedbackStorageError: The server cannot be reached or the schema cannot be
                migrated; the message names ``host:port`` (never the password).
        """
        target = sql.check_url(url)
        _check_pool_size(min_size, max_size)
        settings = sql.server_settings(schema)
        command_timeout = sql.check_seconds("command_timeout", command_timeout)
        connect_timeout = sql.check_seconds("connect_timeout", connect_timeout)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings=settings,
                init=_init_connection,
            )
        except DB_ERRORS as exc:
            raise sql.connect_error(target, exc) from exc
        try:
            async with pool.acquire(timeout=command_timeout) as conn:
                await sql.apply_migrations(conn, target, schema, LATEST_VERSION)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, DB_ERRORS):
                raise sql.connect_error(target, exc) from exc
            raise
        return cls(
            pool,
            target=target,
            schema=schema,
            limits=limits,
            command_timeout=command_timeout,
            database=urlsplit(url).path.lstrip("/") or "postgres",
        )

    @property
    def schema(self) -> str | None:
        """
        The schema holding the tables, or None for the default ``search_path``.
        """
        return self._schema

    @property
    def location(self) -> str:
        """
        ``postgresql://host:port/database`` with ``?schema=`` when one is set.
        """
        schema = f"?schema={self._schema}" if self._schema else ""
        return f"postgresql://{self._target}/{self._database}{schema}"

    def __repr__(self) -> str:
        state = "closed" if self._pool is None else "open"
        return f"<PostgresFeedbackStore {self._target} schema={self._schema!r} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            warnings.warn(f"{self!r} was never closed", ResourceWarning, stacklevel=1)

    async def aclose(self) -> None:
        """
        Close every connection; closing twice is harmless.

        Connections in use are waited for up to ``command_timeout``, then terminated.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await pool.close()
        except DB_ERRORS:
            _LOG.warning(
                "Closing the PostgreSQL pool for %s failed; terminating its connections",
                self._target,
                exc_info=True,
                extra={"target": self._target},
            )
            pool.terminate()

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Store ``feedback``; the same item again changes nothing (``Ok(id)``).

        A different item under a known id returns ``Err(FeedbackConflictError)``.

        Raises:
            FeedbackValidationError: ``feedback`` is not a FeedbackItem or is over a limit.
        """
        check_item(feedback, self._limits)
        return (await self.save_many([feedback])).map(lambda ids: ids[0])

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Store ``items`` in one transaction; return their ids in order.

        Known ids, and repeats of an id within the batch, are stored once when they
        hold the same item; a different item under such an id makes the result
        ``Err(FeedbackConflictError)`` naming the ids. On failure nothing of the batch is
        stored.

        Args:
            items: The batch; every element is validated before anything is written.
            raw_payloads: Item id -> the payload exactly as received (a JSON value),
                kept for audit in the same transaction; an id's first payload is kept.

        Raises:
            FeedbackValidationError: An element is invalid, or ``raw_payloads`` names an
                id outside the batch or holds a value that is not JSON.
        """
        batch = list(items)
        unique: dict[str, FeedbackItem] = {}
        for item in batch:
            check_item(item, self._limits)
            unique.setdefault(item.id, item)
        raw = None if raw_payloads is None else _encode_raw(raw_payloads, unique)
        if not batch:
            return Ok([])
        clash = conflicts(batch, {})
        if clash:
            return Err(FeedbackConflictError(clash))
        rows = _encode(unique.values())
        try:
            async with self._connection("save a batch of feedback") as conn:
                if len(rows) == 1 and not raw:  # one statement is its own transaction
                    if await conn.fetchval(sql.INSERT_ONE_SQL, *rows[0]) < 1:
                        await _check_stored(conn, batch[0])
                else:
                    async with conn.transaction():
                        await _merge(conn, rows, raw)
        except FeedbackStorageError as exc:
            return Err(exc)
        return Ok([item.id for item in batch])

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
        unique = {item.id: item for item in last_of_each_id(batch)}
        raw = None if raw_payloads is None else _encode_raw(raw_payloads, unique)
        if not batch:
            return Ok([])
        for attempt in range(2):  # an id another writer inserted meanwhile: replace it
            try:
                async with self._connection("replace feedback") as conn, conn.transaction():
                    await _remove_replaced(conn, list(unique.values()))
                    await _merge(conn, _encode(unique.values()), raw)
            except FeedbackConflictError as exc:
                if attempt or not _ours(exc, unique):
                    return Err(exc)
            except FeedbackStorageError as exc:
                return Err(exc)
            else:
                break
        return Ok([item.id for item in batch])

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

        The log is read in the write's transaction under a shared lock that a logging
        deletion takes exclusively, so a deletion runs before such a write or after it.

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
        checked = check_accepted(batch, accepted_at)
        unique: dict[str, FeedbackItem] = {}
        for item in batch:
            check_item(item, self._limits)
            unique.setdefault(item.id, item)
        if replace:
            unique = {item.id: item for item in last_of_each_id(batch)}
        times = last_accepted(batch, checked)
        raw = None if raw_payloads is None else _encode_raw(raw_payloads, unique)
        if not batch:
            return Ok([])
        clash = [] if replace else conflicts(batch, {})
        if clash:
            return Err(FeedbackConflictError(clash))
        for attempt in range(2):  # as in replace_many
            try:
                async with (
                    self._connection("save a batch of feedback") as conn,
                    conn.transaction(),
                ):
                    gone = await _write_checked(conn, list(unique.values()), times, raw, replace)
            except FeedbackConflictError as exc:
                if attempt or not replace or not _ours(exc, unique):
                    return Err(exc)
            except FeedbackStorageError as exc:
                return Err(exc)
            else:
                break
        return Ok(sorted(gone))

    async def get(self, item_id: str) -> FeedbackItem | None:
        """
        Return the item with ``item_id``, or None.

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        rows = await self._fetch(sql.GET_SQL, check_id("item_id", item_id))
        return _decode(rows[0]) if rows else None

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return the raw payload stored with the item ``item_id``, or None.

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        rows = await self._fetch(sql.GET_RAW_SQL, check_id("item_id", item_id))
        return rows[0][0] if rows else None

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items of ``session_id``, newest first.

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        rows = await self._fetch(FIND_BY_SESSION_SQL, check_id("session_id", session_id))
        return [_decode(row) for row in rows]

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        kind = coerce_type(feedback_type)
        check_limit(limit)
        rows = await self._fetch(FIND_BY_TYPE_SQL, kind.value, min(limit, _MAX_BIGINT))
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

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        query, params = _window_query(
            ROLLUP_AGGREGATE_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        return _summary(await self._fetch(query, *params))

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

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        query, params = _window_query(
            ROLLUP_STATS_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        rows = await self._fetch(query, *params)
        return _stats(rows, window_hours=window_hours, model=model, provider=provider)

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

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        bucket = check_bucket(bucket)
        query, params = _window_query(
            sql.ROLLUP_SERIES_SQL, window_hours, model, provider, owner_id, feedback_type
        )
        rows = await self._fetch(query, *params)
        return fold_series((tuple(row) for row in rows), bucket)

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

        Raises:
            FeedbackStorageError: The database could not be read.
        """
        where = check_filter(where)
        check_limit(limit)
        cursor = check_cursor(before)
        conditions = _Conditions(where)
        if cursor is not None:
            conditions.add("(created_at, id) < ({}, {})", *cursor)
        limit_mark = conditions.parameter(min(limit, _MAX_BIGINT))
        sql_text = (
            f"SELECT {sql.ITEM_COLUMNS} FROM feedback {conditions.where()}"  # noqa: S608
            f"ORDER BY created_at DESC, id DESC LIMIT {limit_mark}"
        )
        return [_decode(row) for row in await self._fetch(sql_text, *conditions.params)]

    def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield every item matching ``where``, newest first, in constant memory (keyset pages).
        """
        return scan_pages(self.query, where, page_size)

    async def raw_lines(self, where: FeedbackFilter | None = None) -> AsyncIterator[bytes]:
        """
        Yield the raw export of the matching items as JSON Lines, built by the server.

        One ``COPY ... TO STDOUT`` streams the lines, newest first, with backpressure:
        the bytes equal ``FeedbackItem.to_dict()`` of each item through orjson. Chunks
        end at a line end. A reader that takes nothing for 60 s ends the export with
        `FeedbackStorageError` (the connection goes back to the pool).

        Raises:
            FeedbackStorageError: The server failed or the connection was lost.
        """
        conditions = _Conditions(check_filter(where))
        query = sql.RAW_LINE_SQL.replace("{where}", conditions.where())
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=_COPY_CHUNKS)
        failure: list[BaseException] = []

        put = _feeder(queue, self._where())

        async def copy() -> None:
            try:
                async with self._connection("export feedback", limit_s=_COPY_TIMEOUT_S) as conn:
                    await conn.copy_from_query(
                        query, *conditions.params, output=put, timeout=_COPY_TIMEOUT_S
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - handed to the reader below
                failure.append(exc)
            await queue.put(None)

        task = asyncio.create_task(copy())
        pending = b""
        try:
            while (data := await queue.get()) is not None:
                # COPY's text format doubles backslashes; the JSON has no raw tabs,
                # newlines or carriage returns, so that is the only escape to undo.
                pending += data
                end = pending.rfind(b"\n") + 1
                if end:
                    yield pending[:end].replace(b"\\\\", b"\\")
                    pending = pending[end:]
            if failure:
                error = failure[0]
                if isinstance(error, FeedbackStorageError):
                    raise error
                raise self._error("export feedback", error) from error
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Remove the items matching ``where`` (and their raw payloads), in one transaction.

        Args:
            where: Which items; it must set at least one field.
            limit: At most this many items, the oldest first (for bounded batches).

        Raises:
            FeedbackValidationError: ``where`` is empty or ``limit`` is not positive.
            FeedbackStorageError: The database could not be changed.
        """
        conditions = _Conditions(check_deletion(where))
        chosen = f"SELECT id FROM feedback {conditions.where()}"  # noqa: S608 - our columns
        if limit is not None:
            check_limit(limit)
            mark = conditions.parameter(min(limit, _MAX_BIGINT))
            chosen += f"ORDER BY created_at, id LIMIT {mark}"
        async with self._connection("delete feedback") as conn, conn.transaction():
            if limit is None:  # logged, so that no other process writes such items later
                await conn.execute(sql.LOCK_FOR_DELETION_SQL)
                criteria, deleted_at = logged(where)
                await conn.execute(
                    sql.LOG_DELETION_SQL, criteria.encode(), deleted_at, deleted_at - KEEP_SECONDS
                )
            ids = [row[0] for row in await conn.fetch(chosen, *conditions.params)]
            await _lock_for_deletion(conn, ids)
            return await _delete_rows(conn, ids)

    async def rebuild_rollup(self) -> int:
        """
        Count the statistics rollup again from the stored items; return the items counted.

        The store keeps the rollup exact as it writes and deletes; this is for rows put
        into the ``feedback`` table behind its back (``COPY`` in SQL). One transaction
        that holds writers (and another rebuild) off the table meanwhile (``SHARE ROW
        EXCLUSIVE`` lock), for up to a day; readers see the old rollup or the new one.

        Raises:
            FeedbackStorageError: The database could not be changed.
        """
        recount = sql.ROLLUP_OF_ITEMS_SQL.format(items="feedback")
        action = "rebuild the statistics rollup"
        # As long as a full count takes: the pool's command timeout is for single reads.
        wait = _COPY_TIMEOUT_S
        async with self._connection(action, limit_s=wait) as conn, conn.transaction():
            await conn.execute("LOCK TABLE feedback IN SHARE ROW EXCLUSIVE MODE", timeout=wait)
            await conn.execute("DELETE FROM feedback_rollup", timeout=wait)
            await conn.execute(f"INSERT INTO feedback_rollup {recount}", timeout=wait)
            counted = await conn.fetchval(
                "SELECT coalesce(sum(items), 0) FROM feedback_rollup", timeout=wait
            )
        return int(counted)

    @contextlib.asynccontextmanager
    async def _connection(
        self, action: str, *, limit_s: float | None = None
    ) -> AsyncIterator[Connection]:
        """
        Lend a pooled connection; turn driver errors into `FeedbackStorageError`.

        ``limit_s`` is the timeout the statements run under, when not the pool's
        ``command_timeout`` (what a timeout's message names). A connection that failed
        in a way that may leave it unusable (lost, timed out) is terminated, so the pool
        replaces it on the next call.
        """
        pool = self._pool
        if pool is None:
            msg = f"The PostgreSQL store for {self._target} is closed; open a new one."
            raise FeedbackStorageError(msg)
        lent = False
        try:
            async with pool.acquire(timeout=self._timeout) as conn:
                lent = True
                try:
                    yield conn
                except _BROKEN:
                    conn.terminate()
                    raise
        except DB_ERRORS as exc:
            # Waiting for a free connection runs under command_timeout, whatever the
            # statements then run under.
            raise self._error(action, exc, limit_s if lent else None) from exc

    async def _fetch(self, query: str, *params: object) -> list[asyncpg.Record]:
        async with self._connection("read feedback") as conn:
            return await conn.fetch(query, *params)

    def _error(
        self, action: str, exc: BaseException, limit_s: float | None = None
    ) -> FeedbackStorageError:
        if isinstance(exc, TimeoutError) and limit_s is not None:
            why = f"no answer within {limit_s:g} s"
        elif isinstance(exc, TimeoutError):
            why = f"no answer within {self._timeout:g} s (command_timeout)"
        elif isinstance(exc, _BROKEN):
            why = f"the connection failed ({sql.describe(exc)}); the next call reconnects"
        else:
            why = sql.describe(exc)
        return FeedbackStorageError(f"Could not {action} in {self._where()}: {why}.")

    def _where(self) -> str:
        schema = f" (schema {self._schema!r})" if self._schema else ""
        return f"PostgreSQL at {self._target}{schema}"


_COPY_CHUNKS = 16
_COPY_TIMEOUT_S = 24 * 3600.0  # an export as long as its reader takes, within a day
_COPY_STALL_S = 60.0


def _feeder(
    queue: asyncio.Queue[bytes | None], where: str
) -> Callable[[bytes], Coroutine[Any, Any, None]]:
    """
    Return the COPY output callback that hands chunks to the reader of an export.

    A reader that stops reading must not hold a pooled connection (and a snapshot) for
    long: `_COPY_STALL_S` without progress ends the export.
    """

    async def put(data: bytes) -> None:
        try:
            await asyncio.wait_for(queue.put(data), _COPY_STALL_S)
        except TimeoutError:
            msg = (
                f"Could not export feedback in {where}: the reader took nothing for "
                f"{_COPY_STALL_S:g} s, so the export was ended."
            )
            raise FeedbackStorageError(msg) from None

    return put


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """
    Prepare a new pooled connection: the JSON codecs and the staging table.
    """
    # Items are kept as json, whose binary format is the JSON text itself: PostgreSQL
    # keeps it byte for byte, so 1e16 stays a float and -0.0 keeps its sign (jsonb would
    # turn them into numerics). jsonb's binary format is a version byte (1), then the
    # text. Values are encoded with orjson before they reach the driver (see _encode).
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=bytes, decoder=_loads, format="binary"
    )
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        format="binary",
    )
    await conn.execute(sql.CREATE_STAGING_SQL)


def _jsonb_encode(data: bytes) -> bytes:
    return b"\x01" + data


def _jsonb_decode(data: bytes) -> Any:  # noqa: ANN401 - any JSON value
    return _loads(memoryview(data)[1:])


def _encode(items: Iterable[FeedbackItem]) -> list[_Row]:
    """
    Return one row tuple per item, in the order of ``WRITE_COLUMNS``.
    """
    # Items are valid, so orjson can encode them (integers fit in 64 bits).
    rows: list[_Row] = []
    append = rows.append
    for item in items:
        context = item.context
        get = context.get
        value = item.value
        kind = item.feedback_type
        append(
            (
                item.id,
                kind.value,
                item.created_at,
                float(value) if kind is _RATING else None,
                get("trace_id"),
                get("session_id"),
                get("model"),
                get("provider"),
                get("owner_id"),
                _dumps(value),
                _dumps(context),
                _dumps(item.metadata),
            )
        )
    return rows


def _encode_raw(
    payloads: Mapping[str, Any], batch: Mapping[str, FeedbackItem]
) -> tuple[list[str], list[bytes]] | None:
    """
    Return the ids and the encoded payloads (the arrays of ``INSERT_RAW_SQL``), or None.
    """
    if not isinstance(payloads, Mapping):
        raise FeedbackValidationError("raw_payloads", "must be a dict of item id -> payload")
    unknown = payloads.keys() - batch.keys()
    if unknown:
        msg = "must only name ids of items in the batch"
        raise FeedbackValidationError("raw_payloads", msg, min(unknown, key=repr))
    if not payloads:
        return None
    try:
        return list(payloads), [_dumps(payload) for payload in payloads.values()]
    except orjson.JSONEncodeError as exc:
        raise FeedbackValidationError("raw_payloads", f"must hold JSON values: {exc}") from exc


def _inserted(status: str) -> int:
    # asyncpg returns the command tag, "INSERT 0 <rows>".
    return int(status.rpartition(" ")[2] or 0)


_affected = _inserted  # "DELETE <rows>" ends with the count too


class _Conditions:
    """
    SQL conditions and their numbered parameters, built from a `FeedbackFilter`.
    """

    def __init__(self, where: FeedbackFilter) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []
        if where.item_id is not None:
            self.add("id = {}", where.item_id)
        if where.feedback_type is not None:
            self.add("feedback_type = {}", where.feedback_type.value)
        for column, value in where.context_filters().items():
            self.add(f"{column} = {{}}", value)
        if where.since is not None:
            self.add("created_at >= {}", where.since)
        if where.until is not None:
            self.add("created_at < {}", where.until)

    def parameter(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, clause: str, *values: object) -> None:
        self.clauses.append(clause.format(*(self.parameter(v) for v in values)))

    def where(self) -> str:
        return f"WHERE {' AND '.join(self.clauses)} " if self.clauses else ""


async def _check_stored(conn: Connection, item: FeedbackItem) -> None:
    rows = await conn.fetch(sql.GET_SQL, item.id)
    if rows and not same_item(_decode(rows[0]), item):
        raise FeedbackConflictError([item.id])


def _decode(row: asyncpg.Record) -> FeedbackItem:
    """
    Build an item from a row of ``GET_SQL``'s columns without validating it again.
    """
    item_id, kind, value, context, metadata, created_at = row
    return trusted_item(_TYPE_OF[kind], value, context, metadata, item_id, created_at)


def _summary(rows: Iterable[asyncpg.Record]) -> FeedbackSummary:
    """
    Build the `FeedbackSummary` of `AGGREGATE_SQL` (or `ROLLUP_AGGREGATE_SQL`) rows.
    """
    counts = dict.fromkeys(_TYPE_OF, 0)
    average = None
    for kind, count, avg in rows:
        counts[kind] = count
        if kind == _RATING.value:
            average = avg
    return FeedbackSummary(sum(counts.values()), average, counts)


def _stats(
    rows: Iterable[asyncpg.Record],
    *,
    window_hours: float,
    model: str | None,
    provider: str | None,
) -> FeedbackStats:
    """
    Build `FeedbackStats` from `STATS_SQL` (or `ROLLUP_STATS_SQL`) rows.
    """
    counts = dict.fromkeys(_TYPE_OF, 0)
    average = None
    by_model: dict[str, dict[str, Any]] = {}
    distribution: dict[str, int] = {}
    ranks: dict[str, float] = {}
    for part, key, count, value in rows:
        if part == "type":
            counts[key] = count
            average = value if key == _RATING.value else average
        elif part == "model":
            by_model[key] = {"count": count, "average_rating": value}
        elif part == "rating":
            distribution[str(number(value))] = count
        else:
            ranks[part] = number(value)
    summary = FeedbackSummary(sum(counts.values()), average, counts)
    if not ranks:
        return FeedbackStats(summary, window_hours, model, provider, by_model=by_model)
    return FeedbackStats(
        summary,
        window_hours,
        model,
        provider,
        rating_count=counts[_RATING.value],
        rating_min=ranks["p0"],
        rating_max=ranks["p100"],
        rating_percentiles={name: ranks[name] for name in _PERCENTILES},
        rating_distribution=(
            distribution if len(distribution) <= DISTRIBUTION_MAX_VALUES else None
        ),
        by_model=by_model,
    )


def _window_query(
    queries: Mapping[tuple[bool, ...], str], window_hours: float, *filters: object
) -> tuple[str, list[Any]]:
    """
    Return the query for the filters given and its parameters.

    ``filters``: model, provider, owner and type (None when not given).
    """
    since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=cutoff(window_hours))
    given = stats_filters(*filters)
    hour = since.replace(minute=0, second=0, microsecond=0)
    values = [f for f in given if f is not None]
    if since - hour < timedelta(minutes=30):  # the rollup from its hour, minus the items
        params = [hour, *values, hour, since, -1]
    else:  # the rollup from the next hour, plus the items up to it
        params = [since, *values, hour + timedelta(hours=1), hour + timedelta(hours=1), 1]
    return queries[tuple(f is not None for f in given)], params


async def _merge(
    conn: Any,  # noqa: ANN401 - a connection in a transaction
    rows: list[tuple[Any, ...]],
    raw: tuple[list[str], list[bytes]] | None,
) -> None:
    """
    Write ``rows`` (and raw payloads) in the caller's transaction.

    Raises:
        FeedbackConflictError: A known id holds another item (the transaction rolls back).
    """
    await conn.copy_records_to_table(
        sql.STAGING_TABLE, schema_name="pg_temp", columns=sql.WRITE_COLUMNS, records=rows
    )
    inserted = await conn.fetchval(sql.MERGE_STAGED_SQL)
    if inserted < len(rows):  # known ids: same items or not
        clash = [r[0] for r in await conn.fetch(sql.STAGED_CONFLICTS_SQL)]
        if clash:  # raised inside the transaction: it rolls back
            raise FeedbackConflictError(clash)
    if raw:
        await conn.execute(sql.INSERT_RAW_SQL, *raw)


def _ours(conflict: FeedbackConflictError, batch: Mapping[str, FeedbackItem]) -> bool:
    """
    Whether a replacement's conflict may be retried: it names ids of the batch only.

    A plain one means another writer stored the id after the replacement looked (the
    retry then replaces it); one under another owner fails again.
    """
    return all(i in batch for i in conflict.ids)


async def _write_checked(
    conn: Any,  # noqa: ANN401 - a connection in a transaction
    items: list[FeedbackItem],
    times: Mapping[str, float],
    raw: tuple[list[str], list[bytes]] | None,
    replace: bool,
) -> set[str]:
    """
    Write ``items`` except those a logged deletion withdraws; return the withdrawn ids.

    The log is read after the shared lock is granted, by a statement of its own.
    """
    await conn.execute(sql.LOCK_FOR_CHECKED_WRITE_SQL)
    log = [
        (row[0], float(row[1]))
        for row in await conn.fetch(sql.DELETIONS_SINCE_SQL, min(times.values()))
    ]
    gone = withdrawn(items, [times[item.id] for item in items], log)
    kept = [item for item in items if item.id not in gone]
    if raw is not None and gone:
        ids, payloads = raw
        pairs = [(i, p) for i, p in zip(ids, payloads, strict=True) if i not in gone]
        raw = ([i for i, _ in pairs], [p for _, p in pairs]) if pairs else None
    if replace and kept:
        await _remove_replaced(conn, kept)
    if len(kept) == 1 and not raw:  # one row: no staging table needed
        if await conn.fetchval(sql.INSERT_ONE_SQL, *_encode(kept)[0]) < 1:
            await _check_stored(conn, kept[0])
    elif kept:
        await _merge(conn, _encode(kept), raw)
    return gone


async def _remove_replaced(conn: Any, batch: list[FeedbackItem]) -> None:  # noqa: ANN401
    """
    Remove the rows ``batch`` replaces (their rollup counts and raw payloads too).

    When rows are replaced, the rollup table is locked (``EXCLUSIVE``, after the items
    table's usual ``ROW EXCLUSIVE``) for the rest of the transaction: a replacement
    moves counts between rollup rows in two steps, which row locks taken as it goes
    would order differently from concurrent writers and deletions (a deadlock).

    Raises:
        FeedbackConflictError: A row belongs to another owner (the transaction rolls back).
    """
    ids = [item.id for item in batch]
    query = "SELECT id, owner_id FROM feedback WHERE id = ANY($1::text[])"
    if not await conn.fetch(query, ids):
        return  # nothing to replace: written as new items
    await conn.execute("LOCK TABLE feedback IN ROW EXCLUSIVE MODE")
    await conn.execute("LOCK TABLE feedback_rollup IN EXCLUSIVE MODE")
    owners = {row[0]: row[1] for row in await conn.fetch(query, ids)}  # read under the lock
    taken = foreign(batch, owners)
    if taken:
        raise FeedbackConflictError(taken)
    if owners:
        await _delete_rows(conn, list(owners))


async def _delete_rows(conn: Any, ids: list[str]) -> Deleted:  # noqa: ANN401
    """
    Delete the items ``ids``, their raw payloads and rollup counts (their locks taken).
    """
    raw = await conn.execute("DELETE FROM raw_payload WHERE item_id = ANY($1::text[])", ids)
    counts = await conn.fetchrow(sql.DELETE_ITEMS_SQL, ids)
    await conn.execute(sql.DROP_EMPTY_ROLLUP_SQL)
    assert counts is not None  # noqa: S101 - a SELECT of counts is one row
    return Deleted(counts["items"], _affected(raw), rollup_rows=counts["rollup_rows"])


async def _lock_for_deletion(conn: Any, ids: list[str]) -> None:  # noqa: ANN401
    """
    Take a deletion's locks, in an order no writer or rollup rebuild takes them against.

    The ``feedback`` table's lock first (a rebuild takes a stronger one, so it waits
    here), then the rollup's rows of the items in the writers' order, before any row a
    writer may wait for (raw payloads, items).
    """
    await conn.execute("LOCK TABLE feedback IN ROW EXCLUSIVE MODE")
    await conn.execute(sql.LOCK_ROLLUP_OF_SQL, ids)


def _check_pool_size(min_size: object, max_size: object) -> None:
    for name, value, lowest in (("min_size", min_size, 0), ("max_size", max_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise FeedbackValidationError(name, f"must be an integer >= {lowest}", value)
    if min_size > max_size:  # type: ignore[operator]
        raise FeedbackValidationError(
            "min_size", f"must not exceed max_size ({max_size})", min_size
        )


DatabaseFeedbackStore.register(PostgresFeedbackStore)

if __name__ == "__main__":
    sys.exit(main())
