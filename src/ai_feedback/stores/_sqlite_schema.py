"""
The SQLite store's schema and how to reach it.

Numbered migrations, the SQL each store operation runs (module constants, so tests can
``EXPLAIN`` exactly what the store runs), the PRAGMAs every connection uses, how a URL
becomes a connection, and `migrate` with its command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import aiosqlite

from ai_feedback._models import FeedbackType
from ai_feedback.exceptions import FeedbackError, FeedbackStorageError, FeedbackValidationError

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
    "main",
    "migrate",
]

_LOG = logging.getLogger("ai_feedback")
DEFAULT_BUSY_TIMEOUT_MS = 5_000
"""How long a write waits for another connection's write lock before failing."""
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL")
"""Run on every connection: WAL lets readers and the writer proceed together, and with
``synchronous=FULL`` a commit is fsync'd: it survives a crash of the process and of the
machine. (A spool deletes an entry once the store committed it; a store commit that a
power cut could undo would lose it.)"""


@dataclass(frozen=True, slots=True)
class Migration:
    """
    One schema version: statements applied together in one transaction.
    """

    version: int
    description: str
    statements: tuple[str, ...]


HOUR_US = 3_600_000_000
"""The rollup's bucket: one hour, in microseconds."""
_BUCKET = f"created_at - ((created_at % {HOUR_US}) + {HOUR_US}) % {HOUR_US}"  # floor, also < 0
_ROLLUP_KEY = (
    f"{_BUCKET} AS bucket, coalesce(model, '') AS model, coalesce(provider, '') AS provider, "
    "coalesce(owner_id, '') AS owner_id, feedback_type, coalesce(rating, 0) AS rating"
)
ROLLUP_OF_ITEMS_SQL = (
    f"SELECT {_ROLLUP_KEY}, count(*) AS n FROM feedback {{where}}GROUP BY 1, 2, 3, 4, 5, 6"
)
"""The rollup rows of the items ``{where}`` selects (``WHERE ... `` with a trailing space)."""

MIGRATIONS = (
    Migration(
        1,
        "feedback table with an index per query filter",
        (
            # created_at: microseconds since the epoch (UTC). value, context, metadata: JSON
            # text, exactly as saved (a rating 4 stays 4). rating: a RATING's value again, as
            # a number, for SQL aggregates. The other columns copy indexed context keys.
            """CREATE TABLE feedback (
                id TEXT PRIMARY KEY NOT NULL,
                feedback_type TEXT NOT NULL,
                value TEXT NOT NULL,
                rating REAL,
                context TEXT NOT NULL,
                metadata TEXT NOT NULL,
                trace_id TEXT,
                session_id TEXT,
                model TEXT,
                provider TEXT,
                created_at INTEGER NOT NULL
            )""",
            # The window indexes also hold what aggregate and stats read, so those never
            # touch the table (3x faster over 1M rows; no measurable cost to inserts).
            # trace_id has no index: no query filters on it, and random trace ids in an
            # index halved the insert rate (add one with a migration when a query needs it).
            "CREATE INDEX feedback_created ON feedback (created_at, feedback_type, rating, model)",
            (
                "CREATE INDEX feedback_model_created ON feedback "
                "(model, created_at, feedback_type, rating, provider) WHERE model IS NOT NULL"
            ),
            (
                "CREATE INDEX feedback_provider_created ON feedback "
                "(provider, created_at, feedback_type, rating, model) WHERE provider IS NOT NULL"
            ),
            "CREATE INDEX feedback_type_created ON feedback (feedback_type, created_at)",
            (
                "CREATE INDEX feedback_session_created ON feedback (session_id, created_at) "
                "WHERE session_id IS NOT NULL"
            ),
        ),
    ),
    Migration(
        2,
        "raw payload table; owner_id column, filled from existing contexts",
        (
            "CREATE TABLE raw_payload (item_id TEXT PRIMARY KEY NOT NULL, payload TEXT NOT NULL)",
            "ALTER TABLE feedback ADD COLUMN owner_id TEXT",
            (
                "UPDATE feedback SET owner_id = json_extract(context, '$.owner_id') "
                "WHERE json_type(context, '$.owner_id') = 'text'"
            ),
            "CREATE INDEX feedback_owner ON feedback (owner_id) WHERE owner_id IS NOT NULL",
        ),
    ),
    Migration(
        3,
        "indexes for the service's listings: per owner in time order, and per trace",
        (
            "DROP INDEX feedback_owner",
            (
                "CREATE INDEX feedback_owner_created ON feedback "
                "(owner_id, created_at, feedback_type, rating, model) WHERE owner_id IS NOT NULL"
            ),
            "CREATE INDEX feedback_trace ON feedback (trace_id) WHERE trace_id IS NOT NULL",
        ),
    ),
    Migration(
        4,
        "hourly rollup of counts per model, provider, owner, type and rating value",
        (
            # One row per hour bucket and (model, provider, owner, type, rating value): the
            # statistics read whole buckets here and only the window's first partial hour
            # from the items. '' stands for a missing model, provider or owner and 0 for
            # the rating of other types, so that the key has no NULLs (upserts match).
            """CREATE TABLE feedback_rollup (
                bucket INTEGER NOT NULL,
                model TEXT NOT NULL,
                provider TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                feedback_type TEXT NOT NULL,
                rating REAL NOT NULL,
                items INTEGER NOT NULL,
                PRIMARY KEY (bucket, model, provider, owner_id, feedback_type, rating)
            ) WITHOUT ROWID""",
            f"INSERT INTO feedback_rollup {ROLLUP_OF_ITEMS_SQL.format(where='')}",
        ),
    ),
    Migration(
        5,
        "deletion log: items accepted before a deletion are not written after it",
        (
            # One row per deletion made without a limit: its filter (JSON) and when it
            # was made (seconds since the epoch); see stores/_deletion_log.py.
            (
                "CREATE TABLE feedback_deletion (id INTEGER PRIMARY KEY, "
                "criteria TEXT NOT NULL, deleted_at REAL NOT NULL)"
            ),
            "CREATE INDEX feedback_deletion_time ON feedback_deletion (deleted_at)",
        ),
    ),
)
"""Every schema version, oldest first; ``MIGRATIONS[n - 1].version == n``."""
LATEST_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY NOT NULL, "
    "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
OTHER_TYPES = tuple(t.value for t in FeedbackType if t is not FeedbackType.RATING)
INSERT_SQL = (
    "INSERT INTO feedback (id, feedback_type, value, rating, context, metadata, trace_id, "
    "session_id, model, provider, owner_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
INSERT_RAW_SQL = (
    "INSERT INTO raw_payload (item_id, payload) VALUES (?, ?) ON CONFLICT (item_id) DO NOTHING"
)
ITEM_COLUMNS = "id, feedback_type, value, context, metadata, created_at"
GET_SQL = f"SELECT {ITEM_COLUMNS} FROM feedback WHERE id = ?"
GET_RAW_SQL = "SELECT payload FROM raw_payload WHERE item_id = ?"
FIND_BY_SESSION_SQL = (
    f"SELECT {ITEM_COLUMNS} FROM feedback WHERE session_id = ? ORDER BY created_at DESC, id DESC"
)
FIND_BY_TYPE_SQL = (
    f"SELECT {ITEM_COLUMNS} FROM feedback WHERE feedback_type = ? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
FILTER_COLUMNS = ("model", "provider", "owner_id", "feedback_type")
"""The optional filters of the statistics queries, in the order of their parameters; the
queries are keyed by a tuple of booleans saying which of them are given."""
_FILTERS = {
    key: "".join(f" AND {column} = ?" for column, on in zip(FILTER_COLUMNS, key, strict=True) if on)
    for key in itertools.product((False, True), repeat=len(FILTER_COLUMNS))
}
_WHERE = {key: f"WHERE created_at >= ?{filters}" for key, filters in _FILTERS.items()}
_TYPE_TOTALS = ", ".join(f"total(feedback_type = '{t}')" for t in OTHER_TYPES)
AGGREGATE_SQL = {
    key: f"SELECT count(rating), avg(rating), {_TYPE_TOTALS} FROM feedback {where}"
    for key, where in _WHERE.items()
}
"""By the filters given (see `FILTER_COLUMNS`): one row, the rating count and mean, then
a count per other type (in `OTHER_TYPES` order). Parameters: the window's start in
microseconds, then the filters given."""
STATS_SQL = {
    key: f"SELECT model, rating, count(*), total(rating), {_TYPE_TOTALS} "
    f"FROM feedback {where} GROUP BY model, rating"
    for key, where in _WHERE.items()
}
"""Like `AGGREGATE_SQL`, one row per (model, rating value): enough for the counts, the
rating histogram (hence percentiles) and the per-model breakdown in one round trip."""
_ROLLUP_ROWS = (
    "SELECT nullif(model, '') AS model, "
    "CASE WHEN feedback_type = 'rating' THEN rating END AS rating, items AS n, "
    "feedback_type FROM feedback_rollup WHERE bucket {op} ?{filters}"
)
# The window's first whole hour and the items added to or taken from it are counted per
# rating value before anything is summed: items subtracted from the hour then cancel out
# exactly (a large rating before the window's start would otherwise round away the small
# ones inside it). The later hours need no such grouping.
_WINDOW_ROWS = {
    key: (
        _ROLLUP_ROWS.format(op=">", filters=filters)
        + " UNION ALL SELECT model, rating, sum(n), feedback_type FROM ("
        + _ROLLUP_ROWS.format(op="=", filters=filters)
        + " UNION ALL SELECT model, rating, ?, feedback_type FROM feedback "
        f"WHERE created_at >= ? AND created_at < ?{filters}) GROUP BY model, rating, feedback_type"
    )
    for key, filters in _FILTERS.items()
}
_ROLLUP_TYPE_TOTALS = ", ".join(
    f"total(CASE WHEN feedback_type = '{t}' THEN n END)" for t in OTHER_TYPES
)
ROLLUP_AGGREGATE_SQL = {
    key: "SELECT coalesce(sum(CASE WHEN rating IS NOT NULL THEN n END), 0), "
    "total(rating * n) / sum(CASE WHEN rating IS NOT NULL THEN n END), "
    f"{_ROLLUP_TYPE_TOTALS} FROM ({rows})"
    for key, rows in _WINDOW_ROWS.items()
}
"""`AGGREGATE_SQL`'s row from the rollup's hours plus or minus the items of the window's
first, partial hour: the rollup from the hour after the window's start, plus the items from
the start to it; or, when the start is in the first half of its hour, the rollup from that
hour, minus the items of the hour before the start (at most half an hour of items either
way). Parameters: the rollup's first hour and the filters, twice (the hours after it, then
that hour), the items' sign (1 or -1), the items' time range (from, to), the filters."""
ROLLUP_STATS_SQL = {
    key: f"SELECT model, rating, sum(n), total(rating * n), {_ROLLUP_TYPE_TOTALS} "
    f"FROM ({rows}) GROUP BY model, rating HAVING sum(n) > 0"
    for key, rows in _WINDOW_ROWS.items()
}
"""`STATS_SQL`'s rows from the rollup and the first partial hour (parameters as
`ROLLUP_AGGREGATE_SQL`)."""
ROLLUP_SERIES_SQL = {
    key: "SELECT bucket, sum(n), sum(CASE WHEN feedback_type = 'rating' THEN n END), "
    "total(CASE WHEN feedback_type = 'rating' THEN rating * n END) FROM ("
    f"SELECT bucket, feedback_type, rating, items AS n FROM feedback_rollup WHERE bucket > ?"
    f"{filters} UNION ALL SELECT bucket, feedback_type, rating, sum(n) FROM ("  # per value
    f"SELECT bucket, feedback_type, rating, items AS n FROM feedback_rollup WHERE bucket = ?"
    f"{filters} UNION ALL SELECT {_BUCKET}, feedback_type, rating, ? FROM feedback "
    f"WHERE created_at >= ? AND created_at < ?{filters}) GROUP BY bucket, feedback_type, rating"
    ") GROUP BY bucket HAVING sum(n) > 0"
    for key, filters in _FILTERS.items()
}
"""Per hour of the window: (hour start in microseconds, items, ratings, rating sum), from
the rollup and the first partial hour's items as `ROLLUP_AGGREGATE_SQL` (same parameters)."""
ROLLUP_ADD_SQL = (
    "INSERT INTO feedback_rollup VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO UPDATE SET items = items + excluded.items"
)
ROLLUP_REMOVE_SQL = (
    "UPDATE feedback_rollup AS r SET items = r.items - d.n FROM ("
    + ROLLUP_OF_ITEMS_SQL.format(where="WHERE id IN (SELECT id FROM temp.doomed) ")
    + ") AS d WHERE r.bucket = d.bucket AND r.model = d.model AND r.provider = d.provider "
    "AND r.owner_id = d.owner_id AND r.feedback_type = d.feedback_type AND r.rating = d.rating"
)
"""Take the items listed in ``temp.doomed`` out of the rollup (before they are deleted)."""

_URI_PARAMETERS = frozenset(("mode", "cache", "immutable", "nolock", "vfs"))


def parse_target(url_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    """
    Return the absolute path (for messages) and the SQLite ``file:`` URI to open.

    Raises:
        FeedbackValidationError: The URL is malformed or has an unknown parameter.
    """
    raw = os.fspath(url_or_path)
    query = ""
    if isinstance(url_or_path, str) and raw.startswith("sqlite:"):
        if not raw.startswith("sqlite:///") or raw == "sqlite:///":
            msg = "must be sqlite:///relative/path.db, sqlite:////absolute/path.db or a path"
            raise FeedbackValidationError("url", msg, raw)
        raw, _, query = raw.removeprefix("sqlite:///").partition("?")
    for name, _ in parse_qsl(query, keep_blank_values=True):
        if name not in _URI_PARAMETERS:
            msg = f"has unknown parameter {name!r} (known: {', '.join(sorted(_URI_PARAMETERS))})"
            raise FeedbackValidationError("url", msg)
    query = f"?{query}" if query else ""
    if raw == ":memory:":
        return raw, f"file::memory:{query}"
    path = os.path.abspath(raw)  # noqa: PTH100 - keeps the text as given, without resolving
    return path, f"file:{quote(path)}{query}"


async def connect(path: str, uri: str, busy_timeout_ms: object) -> aiosqlite.Connection:
    """
    Open ``uri`` with explicit transactions and `PRAGMAS` applied.

    Raises:
        FeedbackValidationError: ``busy_timeout_ms`` is not a non-negative integer.
        FeedbackStorageError: The file cannot be opened or is not a database.
    """
    if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
        raise FeedbackValidationError("busy_timeout_ms", "must be an integer", busy_timeout_ms)
    if busy_timeout_ms < 0:
        raise FeedbackValidationError("busy_timeout_ms", "must not be negative", busy_timeout_ms)
    # isolation_level=None: no implicit transactions; the store BEGINs and COMMITs itself.
    connection = aiosqlite.connect(
        uri, uri=True, isolation_level=None, timeout=busy_timeout_ms / 1000
    )
    try:
        db = await connection
    except sqlite3.Error as exc:
        # aiosqlite stops its thread without waiting for it; wait here, or the thread may
        # report to an event loop that is already closed (an unhandled thread exception).
        await asyncio.to_thread(connection._thread.join, 5)  # noqa: SLF001
        msg = f"Cannot open SQLite database {path!r}: {exc} (does its directory exist?)."
        raise FeedbackStorageError(msg) from exc
    try:
        for pragma in PRAGMAS:
            await db.execute(pragma)
    except sqlite3.Error as exc:
        await db.close()
        msg = f"Cannot open SQLite database {path!r}: {exc}."
        raise FeedbackStorageError(msg) from exc
    return db


async def rollback(db: aiosqlite.Connection) -> None:
    """
    End the connection's transaction, if any, discarding it.
    """
    # Queued after whatever still runs on the connection's thread, so it always ends the
    # transaction; "no transaction is active" is expected and ignored.
    with contextlib.suppress(sqlite3.Error):
        await db.execute("ROLLBACK")


async def migrate(
    url_or_path: str | os.PathLike[str],
    *,
    target: int | None = None,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> int:
    """
    Apply the missing migrations up to ``target`` (the latest by default).

    A database already at or past ``target`` is left as it is (there are no downgrades).

    Returns:
        The database's schema version afterwards.

    Raises:
        FeedbackValidationError: The URL or ``target`` is malformed.
        FeedbackStorageError: The file cannot be opened or migrated.
    """
    if target is None:
        target = LATEST_VERSION
    if isinstance(target, bool) or not isinstance(target, int):
        raise FeedbackValidationError("target", "must be an integer", target)
    if not 1 <= target <= LATEST_VERSION:
        msg = f"must be a schema version from 1 to {LATEST_VERSION}"
        raise FeedbackValidationError("target", msg, target)
    path, uri = parse_target(url_or_path)
    db = await connect(path, uri, busy_timeout_ms)
    try:
        return await apply_migrations(db, path, target)
    finally:
        await db.close()


async def apply_migrations(db: aiosqlite.Connection, path: str, target: int) -> int:
    """
    Apply `MIGRATIONS` up to ``target``, one transaction each; return the version.

    Raises:
        FeedbackStorageError: A migration failed, or the database is newer than this code.
    """
    try:
        version = await _version(db)
        if version > LATEST_VERSION:
            msg = (
                f"SQLite database {path!r} has schema version {version}, newer than this "
                f"ai-feedback supports ({LATEST_VERSION}); upgrade ai-feedback."
            )
            raise FeedbackStorageError(msg)
        for migration in MIGRATIONS[version:target]:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.execute(_VERSION_TABLE_SQL)
                if await _version(db) < migration.version:  # another process may be faster
                    for statement in migration.statements:
                        await db.execute(statement)
                    await db.execute(
                        "INSERT INTO schema_version VALUES (?, ?, ?)",
                        (migration.version, migration.description, datetime.now(UTC).isoformat()),
                    )
                await db.execute("COMMIT")
            except BaseException:
                await rollback(db)
                raise
            _LOG.info(
                "Migrated SQLite database %r to schema version %d",
                path,
                migration.version,
                extra={"path": path, "schema_version": migration.version},
            )
        return await _version(db)
    except sqlite3.Error as exc:
        msg = f"Cannot migrate SQLite database {path!r}: {exc}."
        raise FeedbackStorageError(msg) from exc


async def _version(db: aiosqlite.Connection) -> int:
    tables = await db.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    )
    if not list(tables):
        return 0
    [(version,)] = await db.execute_fetchall("SELECT coalesce(max(version), 0) FROM schema_version")
    return int(version)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``python -m ai_feedback.stores.sqlite migrate URL [--target N]``.

    Returns:
        The exit status: 0, or 1 when migrating failed (the reason goes to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m ai_feedback.stores.sqlite", description="Manage an ai-feedback database."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("migrate", help="apply the missing schema migrations")
    command.add_argument("url", help="sqlite:///path/to/file.db or a plain path")
    command.add_argument(
        "--target", type=int, help=f"stop at this version (default: {LATEST_VERSION})"
    )
    args = parser.parse_args(argv)
    try:
        version = asyncio.run(migrate(args.url, target=args.target))
    except FeedbackError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"schema version {version}\n")
    return 0
