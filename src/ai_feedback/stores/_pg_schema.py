"""
The PostgreSQL store's schema and how to reach it.

Numbered migrations, the SQL each store operation runs, `migrate` and its command line,
and the settings every connection uses. Every statement names tables without a schema:
connections set ``search_path`` to the store's schema, so the same text serves every
schema (and tests can ``EXPLAIN`` exactly what the store runs).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import logging
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ai_feedback._models import DISTRIBUTION_MAX_VALUES
from ai_feedback._urls import host_problem, masked_url
from ai_feedback.exceptions import FeedbackError, FeedbackStorageError, FeedbackValidationError

__all__ = [
    "AGGREGATE_SQL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DELETIONS_SINCE_SQL",
    "FIND_BY_SESSION_SQL",
    "FIND_BY_TYPE_SQL",
    "LATEST_VERSION",
    "LOCK_FOR_CHECKED_WRITE_SQL",
    "LOCK_FOR_DELETION_SQL",
    "LOG_DELETION_SQL",
    "MIGRATIONS",
    "STATS_SQL",
    "Migration",
    "main",
    "migrate",
]

_LOG = logging.getLogger("ai_feedback")
DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds a new connection may take to establish."""

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
"""A plain or a pooled asyncpg connection."""
DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # protocol errors on a corrupted stream
    OSError,
    TimeoutError,
)
"""Everything the driver raises for a failed operation (programming errors excluded)."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class Migration:
    """
    One schema version: statements applied together in one transaction.
    """

    version: int
    description: str
    statements: tuple[str, ...]


_BUCKET = "date_bin('1 hour', created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
ROLLUP_OF_ITEMS_SQL = (
    f"SELECT {_BUCKET} AS bucket, coalesce(model, '') AS model, "
    "coalesce(provider, '') AS provider, coalesce(owner_id, '') AS owner_id, feedback_type, "
    "coalesce(rating, 0) AS rating, count(*) AS n FROM {items} GROUP BY 1, 2, 3, 4, 5, 6 "
    "ORDER BY 1, 2, 3, 4, 5, 6"
)
"""The rollup rows of the rows of ``{items}`` (a table or a CTE with the item columns), in
the rollup key's order: writers that upsert them lock the rows in one order, so that two
concurrent batches never deadlock."""
_ROLLUP_KEY = "bucket, model, provider, owner_id, feedback_type, rating"

MIGRATIONS = (
    Migration(
        1,
        "feedback table with an index per query filter",
        (
            # value, context and metadata keep the item exactly (a rating 4 stays 4);
            # rating repeats a RATING's value as a number for SQL averages; the other
            # columns copy the context keys that queries filter on.
            """CREATE TABLE feedback (
                id text PRIMARY KEY,
                feedback_type text NOT NULL
                    CHECK (feedback_type IN ('rating', 'text', 'correction', 'label')),
                created_at timestamptz NOT NULL,
                rating double precision,
                trace_id text,
                session_id text,
                model text,
                provider text,
                value jsonb NOT NULL,
                context jsonb NOT NULL,
                metadata jsonb NOT NULL
            )""",
            "CREATE INDEX feedback_created ON feedback (created_at)",
            "CREATE INDEX feedback_type_created ON feedback (feedback_type, created_at)",
            (
                "CREATE INDEX feedback_session_created ON feedback (session_id, created_at) "
                "WHERE session_id IS NOT NULL"
            ),
            # The filtered aggregates read only these indexes (index-only scans): they
            # carry the type and the rating, which is all that aggregate and stats need.
            (
                "CREATE INDEX feedback_model_created ON feedback (model, created_at) "
                "INCLUDE (feedback_type, rating) WHERE model IS NOT NULL"
            ),
            (
                "CREATE INDEX feedback_provider_created ON feedback (provider, created_at) "
                "INCLUDE (feedback_type, rating, model) WHERE provider IS NOT NULL"
            ),
            "CREATE INDEX feedback_trace ON feedback (trace_id) WHERE trace_id IS NOT NULL",
        ),
    ),
    Migration(
        2,
        "raw payload table; owner_id column, filled from existing contexts",
        (
            """CREATE TABLE raw_payload (
                item_id text PRIMARY KEY,
                payload jsonb NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now()
            )""",
            "ALTER TABLE feedback ADD COLUMN owner_id text",
            (
                "UPDATE feedback SET owner_id = context ->> 'owner_id' "
                "WHERE jsonb_typeof(context -> 'owner_id') = 'string'"
            ),
            "CREATE INDEX feedback_owner ON feedback (owner_id) WHERE owner_id IS NOT NULL",
        ),
    ),
    Migration(
        3,
        "keep item JSON exactly as written: json instead of jsonb",
        (
            (
                "ALTER TABLE feedback ALTER COLUMN value TYPE json USING value::json, "
                "ALTER COLUMN context TYPE json USING context::json, "
                "ALTER COLUMN metadata TYPE json USING metadata::json"
            ),
            "ALTER TABLE raw_payload ALTER COLUMN payload TYPE json USING payload::json",
        ),
    ),
    Migration(
        4,
        "an index for the service's listings and statistics per owner, in time order",
        (
            "DROP INDEX feedback_owner",
            (
                "CREATE INDEX feedback_owner_created ON feedback (owner_id, created_at) "
                "INCLUDE (feedback_type, rating, model) WHERE owner_id IS NOT NULL"
            ),
        ),
    ),
    Migration(
        5,
        "hourly rollup of counts per model, provider, owner, type and rating value",
        (
            # One row per hour and (model, provider, owner, type, rating value): statistics
            # read whole hours here and only the window's first partial hour from the
            # items. '' stands for a missing model, provider or owner and 0 for the rating
            # of other types, so that the key has no NULLs (upserts match).
            """CREATE TABLE feedback_rollup (
                bucket timestamptz NOT NULL,
                model text NOT NULL,
                provider text NOT NULL,
                owner_id text NOT NULL,
                feedback_type text NOT NULL,
                rating double precision NOT NULL,
                items bigint NOT NULL,
                PRIMARY KEY (bucket, model, provider, owner_id, feedback_type, rating)
            )""",
            f"INSERT INTO feedback_rollup {ROLLUP_OF_ITEMS_SQL.format(items='feedback')}",
        ),
    ),
    Migration(
        6,
        "deletion log: items accepted before a deletion are not written after it",
        (
            # One row per deletion made without a limit: its filter and when it was made
            # (seconds since the epoch); see stores/_deletion_log.py.
            """CREATE TABLE feedback_deletion (
                id bigserial PRIMARY KEY,
                criteria json NOT NULL,
                deleted_at double precision NOT NULL
            )""",
            "CREATE INDEX feedback_deletion_time ON feedback_deletion (deleted_at)",
        ),
    ),
)
"""Every schema version, oldest first; ``MIGRATIONS[n - 1].version == n``."""

LATEST_VERSION = MIGRATIONS[-1].version

VERSION_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
    "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
CURRENT_VERSION_SQL = "SELECT coalesce(max(version), 0) FROM schema_version"
RECORD_VERSION_SQL = "INSERT INTO schema_version (version, description) VALUES ($1, $2)"

WRITE_COLUMNS = (
    "id",
    "feedback_type",
    "created_at",
    "rating",
    "trace_id",
    "session_id",
    "model",
    "provider",
    "owner_id",
    "value",
    "context",
    "metadata",
)
"""The columns a write fills, in the order of the store's row tuples."""
_WRITE_LIST = ", ".join(WRITE_COLUMNS)
_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(WRITE_COLUMNS) + 1))

INSERT_SQL = (
    f"INSERT INTO feedback ({_WRITE_LIST}) VALUES ({_PLACEHOLDERS}) ON CONFLICT (id) DO NOTHING"
)
STAGING_TABLE = "feedback_staging"
# One staging table per connection, created when the connection opens; ON COMMIT DELETE
# ROWS empties it after each batch without the catalog churn of a table per batch.
CREATE_STAGING_SQL = f"""CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} (
    id text, feedback_type text, created_at timestamptz, rating double precision,
    trace_id text, session_id text, model text, provider text, owner_id text,
    value json, context json, metadata json
) ON COMMIT DELETE ROWS"""
_ROLL_UP_INSERTED = (
    " RETURNING created_at, model, provider, owner_id, feedback_type, rating), "
    f"rolled AS (INSERT INTO feedback_rollup {ROLLUP_OF_ITEMS_SQL.format(items='inserted')} "
    f"ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET items = feedback_rollup.items + excluded.items) "
    "SELECT count(*) FROM inserted"
)
MERGE_STAGED_SQL = (
    f"WITH inserted AS (INSERT INTO feedback ({_WRITE_LIST}) "
    f"SELECT {_WRITE_LIST} FROM pg_temp.{STAGING_TABLE} ON CONFLICT (id) DO NOTHING"
    + _ROLL_UP_INSERTED
)
"""Move the staged rows into ``feedback`` and count the new ones into the rollup; returns
how many were new (known ids are left alone, in the table and in the rollup)."""
INSERT_ONE_SQL = (
    f"WITH inserted AS (INSERT INTO feedback ({_WRITE_LIST}) VALUES ({_PLACEHOLDERS}) "
    "ON CONFLICT (id) DO NOTHING" + _ROLL_UP_INSERTED
)
"""`INSERT_SQL` with the rollup, in one statement; returns 1 when the row was new."""
DELETE_ITEMS_SQL = (
    "WITH gone AS (DELETE FROM feedback WHERE id = ANY($1::text[]) "
    "RETURNING created_at, model, provider, owner_id, feedback_type, rating), "
    f"counted AS ({ROLLUP_OF_ITEMS_SQL.format(items='gone')}), "
    "taken AS (UPDATE feedback_rollup AS r SET items = r.items - c.n FROM counted AS c "
    "WHERE (r.bucket, r.model, r.provider, r.owner_id, r.feedback_type, r.rating) = "
    "(c.bucket, c.model, c.provider, c.owner_id, c.feedback_type, c.rating) RETURNING 1) "
    "SELECT (SELECT count(*) FROM gone) AS items, (SELECT count(*) FROM taken) AS rollup_rows"
)
"""Delete the items with the ids in $1 and take them out of the rollup; returns how many
items and rollup rows."""
LOCK_ROLLUP_OF_SQL = (
    "SELECT 1 FROM feedback_rollup AS r JOIN ("
    + ROLLUP_OF_ITEMS_SQL.format(items="feedback WHERE id = ANY($1::text[])")
    + ") AS c ON (r.bucket, r.model, r.provider, r.owner_id, r.feedback_type, r.rating) = "
    "(c.bucket, c.model, c.provider, c.owner_id, c.feedback_type, c.rating) "
    "ORDER BY r.bucket, r.model, r.provider, r.owner_id, r.feedback_type, r.rating "
    "FOR UPDATE OF r"
)
"""Lock the rollup rows of the items with the ids in $1, in the key's order (as writers
lock them), before `DELETE_ITEMS_SQL` changes them: deletions and writes never deadlock.
A statement of its own, so that the deletion's snapshot sees what it waited for."""
DROP_EMPTY_ROLLUP_SQL = "DELETE FROM feedback_rollup WHERE items <= 0"
# Deletions that log themselves and writes checked against the log take turns: a
# deletion holds this schema's advisory lock exclusively, such a write holds it shared.
# The lock is a statement of its own: a statement that waited for it would still read
# with the snapshot it started with (READ COMMITTED), missing what the other committed.
_LOG_LOCK = "1718903, hashtext(current_schema())"
LOCK_FOR_DELETION_SQL = f"SELECT pg_advisory_xact_lock({_LOG_LOCK})"
LOCK_FOR_CHECKED_WRITE_SQL = f"SELECT pg_advisory_xact_lock_shared({_LOG_LOCK})"
LOG_DELETION_SQL = (
    "WITH pruned AS (DELETE FROM feedback_deletion WHERE deleted_at < $3) "
    "INSERT INTO feedback_deletion (criteria, deleted_at) VALUES ($1::json, $2)"
)
"""Log a deletion (filter $1, time $2) and forget those made before $3."""
DELETIONS_SINCE_SQL = (
    "SELECT criteria::text, deleted_at FROM feedback_deletion WHERE deleted_at >= $1"
)

INSERT_RAW_SQL = (
    "INSERT INTO raw_payload (item_id, payload) "
    "SELECT u.item_id, u.payload FROM unnest($1::text[], $2::json[]) AS u(item_id, payload) "
    # Only for items that exist: a batch sent again while one of its items was being
    # deleted must not bring back the deleted item's payload.
    "WHERE EXISTS (SELECT 1 FROM feedback AS f WHERE f.id = u.item_id) "
    "ON CONFLICT (item_id) DO NOTHING"
)

STAGED_CONFLICTS_SQL = (
    f"SELECT s.id FROM pg_temp.{STAGING_TABLE} s JOIN feedback f ON f.id = s.id "
    "WHERE f.feedback_type <> s.feedback_type OR f.value::jsonb <> s.value::jsonb "
    "OR f.context::jsonb <> s.context::jsonb OR f.metadata::jsonb <> s.metadata::jsonb"
)
"""Staged rows whose id holds a different item (compared as JSON values)."""
ITEM_COLUMNS = "id, feedback_type, value, context, metadata, created_at"
GET_SQL = f"SELECT {ITEM_COLUMNS} FROM feedback WHERE id = $1"
GET_RAW_SQL = "SELECT payload FROM raw_payload WHERE item_id = $1"
# One JSON line per item, built by the server for COPY: the same bytes as
# FeedbackItem.to_dict() through orjson (json columns hold orjson's text verbatim;
# created_at as Python's isoformat in UTC, without a fraction at a whole second).
RAW_LINE_SQL = (
    """SELECT '{"id":' || to_json(id)::text || ',"feedback_type":"' || feedback_type """
    """|| '","value":' || value::text || ',"context":' || context::text """
    """|| ',"metadata":' || metadata::text || ',"created_at":"' """
    """|| to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') """
    """|| CASE WHEN extract(microseconds FROM created_at)::int % 1000000 = 0 THEN '' """
    """ELSE to_char(created_at AT TIME ZONE 'UTC', '.US') END || '+00:00"}' """
    "FROM feedback {where}ORDER BY created_at DESC, id DESC"
)
"""The raw export's lines; ``{where}`` takes the conditions of `_Conditions`."""
FIND_BY_SESSION_SQL = (
    f"SELECT {ITEM_COLUMNS} FROM feedback WHERE session_id = $1 ORDER BY created_at DESC, id DESC"
)
"""Parameters: session id. Uses ``feedback_session_created``."""
FIND_BY_TYPE_SQL = (
    f"SELECT {ITEM_COLUMNS} FROM feedback WHERE feedback_type = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)
"""Parameters: type value, limit. Uses ``feedback_type_created``."""


FILTER_COLUMNS = ("model", "provider", "owner_id", "feedback_type")
"""The optional filters of the statistics queries, in the order of their parameters ($2
on); the queries are keyed by a tuple of booleans saying which of them are given."""


def _filters(*given: bool) -> str:
    columns = [c for c, on in zip(FILTER_COLUMNS, given, strict=True) if on]
    return "".join(f" AND {column} = ${n}" for n, column in enumerate(columns, start=2))


_FILTERS = {
    key: _filters(*key) for key in itertools.product((False, True), repeat=len(FILTER_COLUMNS))
}
AGGREGATE_SQL: Mapping[tuple[bool, ...], str] = {
    key: "SELECT feedback_type, count(*), avg(rating) FROM feedback "
    f"WHERE created_at >= $1{where} GROUP BY feedback_type"
    for key, where in _FILTERS.items()
}
"""
By the filters given (see `FILTER_COLUMNS`): rows of (type, count, average rating).

Parameters: the window's start, then the model, provider, owner and type when given.
"""

_GROUPING = "GROUP BY GROUPING SETS ((feedback_type), (model), (rating))"
STATS_SQL: Mapping[tuple[bool, ...], str] = {
    key: f"""WITH grouped AS (
    SELECT GROUPING(feedback_type) = 0 AS by_type, GROUPING(model) = 0 AS by_model,
           feedback_type, model, rating, count(*) AS n, avg(rating) AS average
    FROM feedback
    WHERE created_at >= $1{where}
    {_GROUPING}
), ratings AS (
    SELECT rating, n, sum(n) OVER (ORDER BY rating) AS upto, sum(n) OVER () AS total
    FROM grouped
    WHERE NOT by_type AND NOT by_model AND rating IS NOT NULL
)
SELECT 'type', feedback_type, n, average FROM grouped WHERE by_type
UNION ALL
SELECT 'model', model, n, average FROM grouped WHERE by_model AND model IS NOT NULL
UNION ALL
(SELECT 'rating', NULL, n, rating FROM ratings ORDER BY rating LIMIT {DISTRIBUTION_MAX_VALUES + 1})
UNION ALL
SELECT 'p' || p, NULL, NULL, min(rating)
FROM ratings, unnest(ARRAY[0, 50, 90, 99, 100]) AS p
WHERE upto >= greatest(ceil(p::float8 / 100 * total::float8), 1)
GROUP BY p"""
    for key, where in _FILTERS.items()
}
"""
By the filters given: `FeedbackStats` in one scan and one round trip.

Rows of (part, key, count, number), told apart by ``part``: ``type`` (count and average
rating per type), ``model`` (the same per model), ``rating`` (count per distinct rating,
at most one more than the distribution shows) and ``p0``, ``p50``, ``p90``, ``p99``,
``p100`` (nearest-rank percentiles: p0 is the minimum, p100 the maximum). The rank is
computed in float8 like ``_common.rating_stats`` does, so both agree to the last value.
Parameters as for `AGGREGATE_SQL`.
"""


def _window(key: tuple[bool, ...]) -> str:
    """
    The window's rows as (type, model, rating, n), for the rollup queries.

    The rollup's hours plus or minus the items of the window's first, partial hour: the
    rollup from the hour after the window's start plus the items from the start to it;
    or, when the start is in the first half of its hour, the rollup from that hour minus
    the items of the hour before the start (at most half an hour of items either way).
    Parameters: $1 the items' range start, the filters, the rollup's first hour, the
    items' range end, the items' sign (1 or -1).
    """
    where = _FILTERS[key]
    whole, end, sign = (f"${2 + sum(key) + n}" for n in range(3))
    # The first whole hour and the items added to or taken from it are counted per
    # rating value before anything is summed: subtracted items then cancel out exactly
    # (a large rating before the window's start would otherwise round away the small
    # ones inside it). The later hours need no such grouping.
    rollup = (
        "SELECT feedback_type, nullif(model, '') AS model, "
        "CASE WHEN feedback_type = 'rating' THEN rating END AS rating, items AS n "
        "FROM feedback_rollup WHERE bucket {op} " + whole + where
    )
    return (
        f"{rollup.format(op='>')} UNION ALL SELECT feedback_type, model, rating, "
        f"sum(n)::bigint FROM ({rollup.format(op='=')} "
        f"UNION ALL SELECT feedback_type, model, rating, {sign}::bigint FROM feedback "
        f"WHERE created_at >= $1 AND created_at < {end}{where}) AS u "
        "GROUP BY feedback_type, model, rating"
    )


_WEIGHTED_AVERAGE = "sum(rating * n) / nullif(sum(n) FILTER (WHERE rating IS NOT NULL), 0)"
ROLLUP_AGGREGATE_SQL: Mapping[tuple[bool, ...], str] = {
    key: f"SELECT feedback_type, sum(n)::bigint, {_WEIGHTED_AVERAGE} "
    f"FROM ({_window(key)}) AS w GROUP BY feedback_type"
    for key in _FILTERS
}
"""`AGGREGATE_SQL`'s rows from the rollup (parameters as `_window`)."""
ROLLUP_STATS_SQL: Mapping[tuple[bool, ...], str] = {
    key: STATS_SQL[key]
    .replace(
        "count(*) AS n, avg(rating) AS average\n    FROM feedback\n    WHERE created_at >= $1"
        + where,
        f"sum(n)::bigint AS n, {_WEIGHTED_AVERAGE} AS average\n    FROM ({_window(key)}) AS w",
    )
    .replace(_GROUPING, f"{_GROUPING} HAVING sum(n) > 0")
    for key, where in _FILTERS.items()
}
"""`STATS_SQL` over the rollup's window rows (parameters as `_window`)."""


def _series(key: tuple[bool, ...]) -> str:
    where = _FILTERS[key]
    whole, end, sign = (f"${2 + sum(key) + n}" for n in range(3))
    return (
        "SELECT bucket, sum(n)::bigint, "
        "coalesce(sum(n) FILTER (WHERE feedback_type = 'rating'), 0)::bigint, "
        "coalesce(sum(rating * n) FILTER (WHERE feedback_type = 'rating'), 0) FROM ("
        "SELECT bucket, feedback_type, rating, items AS n "
        f"FROM feedback_rollup WHERE bucket > {whole}{where} "
        "UNION ALL SELECT bucket, feedback_type, rating, sum(n) FROM ("  # per value first
        "SELECT bucket, feedback_type, rating, items AS n "
        f"FROM feedback_rollup WHERE bucket = {whole}{where} "
        f"UNION ALL SELECT {_BUCKET}, feedback_type, rating, {sign}::bigint FROM feedback "
        f"WHERE created_at >= $1 AND created_at < {end}{where}) AS u "
        "GROUP BY bucket, feedback_type, rating) AS w GROUP BY bucket "
        "HAVING sum(n) > 0"
    )


ROLLUP_SERIES_SQL: Mapping[tuple[bool, ...], str] = {key: _series(key) for key in _FILTERS}
"""Per hour of the window: (hour start, items, ratings, rating sum), whole hours from the
rollup and the first partial hour from the items (parameters as `_window`)."""


async def migrate(
    url: str,
    *,
    schema: str | None = None,
    target: int | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> int:
    """
    Apply the missing migrations up to ``target`` (the latest by default).

    A schema already at or past ``target`` is left as it is (there are no downgrades).
    Concurrent callers wait for each other on an advisory lock.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``.
        schema: The schema to migrate (created when missing), as for
            `PostgresFeedbackStore.open`.
        target: The schema version to reach.
        connect_timeout: Seconds establishing the connection may take.

    Returns:
        The schema version afterwards.

    Raises:
        FeedbackValidationError: The URL, the schema name or ``target`` is malformed.
        FeedbackStorageError: The server cannot be reached or a migration failed.
    """
    if target is None:
        target = LATEST_VERSION
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= LATEST_VERSION:
        msg = f"must be a schema version from 1 to {LATEST_VERSION}"
        raise FeedbackValidationError("target", msg, target)
    where = check_url(url)
    settings = server_settings(schema)
    connect_timeout = check_seconds("connect_timeout", connect_timeout)
    try:
        conn = await asyncpg.connect(url, timeout=connect_timeout, server_settings=settings)
    except DB_ERRORS as exc:
        raise connect_error(where, exc) from exc
    try:
        return await apply_migrations(conn, where, schema, target)
    except DB_ERRORS as exc:
        raise connect_error(where, exc) from exc
    finally:
        try:
            await conn.close(timeout=connect_timeout)
        except DB_ERRORS:
            conn.terminate()


async def apply_migrations(conn: Connection, where: str, schema: str | None, target: int) -> int:
    """
    Apply ``MIGRATIONS`` up to ``target``, one transaction each; return the version.

    Raises:
        FeedbackStorageError: The schema is newer than this code knows.
    """
    version = await _version(conn)
    if version < target:
        name = schema if schema is not None else await conn.fetchval("SELECT current_schema()")
        # One lock per schema, held by each transaction below: released by COMMIT, or by
        # the server if this process dies mid-migration.
        digest = hashlib.blake2b(f"ai_feedback:{name}".encode(), digest_size=8).digest()
        lock = int.from_bytes(digest, "big", signed=True)
        if schema is not None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
                # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on
                # the database even when the schema exists.
                found = "SELECT true FROM pg_namespace WHERE nspname = $1"
                if not await conn.fetchval(found, schema):
                    await conn.execute(f"CREATE SCHEMA {quote(schema)}")
        for migration in MIGRATIONS[version:target]:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
                await conn.execute(VERSION_TABLE_SQL)
                if await _version(conn) >= migration.version:  # another process was faster
                    continue
                await conn.execute(";\n".join(migration.statements))
                await conn.execute(RECORD_VERSION_SQL, migration.version, migration.description)
            _LOG.info(
                "Migrated PostgreSQL schema %r at %s to version %d",
                name,
                where,
                migration.version,
                extra={"schema": name, "target": where, "schema_version": migration.version},
            )
        version = await _version(conn)
    if version > LATEST_VERSION:
        msg = (
            f"PostgreSQL schema {schema!r} at {where} has schema version {version}, newer "
            f"than this ai-feedback supports ({LATEST_VERSION}); upgrade ai-feedback."
        )
        raise FeedbackStorageError(msg)
    return version


async def _version(conn: Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
        return 0
    return int(await conn.fetchval(CURRENT_VERSION_SQL))


def server_settings(schema: object) -> dict[str, str]:
    """
    Return the session settings of every connection, checking the schema name.

    Raises:
        FeedbackValidationError: ``schema`` is not a plain identifier.
    """
    settings = {
        "application_name": "ai-feedback",
        # The best plan for a window depends on where it starts: plan every execution
        # with its values rather than falling back to a generic plan.
        "plan_cache_mode": "force_custom_plan",
        # Room for a 10,000-item staging batch without spilling to disk.
        "temp_buffers": "32MB",
    }
    if schema is not None:
        if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
            msg = "must be an identifier: a letter or _, then letters, digits or _ (63 at most)"
            raise FeedbackValidationError("schema", msg, schema)
        if schema.lower().startswith("pg_"):
            raise FeedbackValidationError("schema", "must not start with pg_ (reserved)", schema)
        settings["search_path"] = quote(schema)
    return settings


def quote(identifier: str) -> str:
    """
    Return ``identifier`` quoted for SQL; it must have passed `server_settings`.
    """
    return f'"{identifier}"'


def check_url(url: object) -> str:
    """
    Return ``host:port`` of a PostgreSQL URL, for messages (never the password).

    Raises:
        FeedbackValidationError: ``url`` is not a ``postgresql://`` URL, or its host
            or port is malformed.
    """
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        msg = "must be a postgresql://user@host:port/database URL"
        raise FeedbackValidationError("url", msg, masked_url(url) if isinstance(url, str) else url)
    problem = host_problem(url)
    if problem:
        raise FeedbackValidationError("url", problem, masked_url(url))
    hosts = urlsplit(url).netloc.rpartition("@")[2] or "localhost"
    if not re.search(r":\d+$", hosts):
        hosts += ":5432"
    return hosts


def check_seconds(name: str, value: object) -> float:
    """
    Return ``value`` if it is a positive, finite number of seconds.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise FeedbackValidationError(name, "must be a positive number of seconds", value)
    return float(value)


def describe(exc: BaseException) -> str:
    """
    Return ``exc`` as ``Type: message`` for error messages.
    """
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect_error(where: str, exc: BaseException) -> FeedbackStorageError:
    """
    Return the error for a server at ``where`` that cannot be reached, entered or migrated.
    """
    hint = (
        " Check that the server is running and reachable at that address."
        if isinstance(exc, OSError | TimeoutError)
        else ""
    )
    return FeedbackStorageError(f"Cannot use PostgreSQL at {where}: {describe(exc)}.{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``python -m ai_feedback.stores.postgres migrate URL [--schema S] [--target N]``.

    Returns:
        The exit status: 0, or 1 when migrating failed (the reason goes to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m ai_feedback.stores.postgres",
        description="Manage an ai-feedback PostgreSQL schema.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("migrate", help="apply the missing schema migrations")
    command.add_argument("url", help="postgresql://user@host:port/database")
    command.add_argument("--schema", help="the schema holding the tables (default: search_path)")
    command.add_argument(
        "--target", type=int, help=f"stop at this version (default {LATEST_VERSION})"
    )
    args = parser.parse_args(argv)
    try:
        version = asyncio.run(migrate(args.url, schema=args.schema, target=args.target))
    except FeedbackError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"schema version {version}\n")
    return 0
