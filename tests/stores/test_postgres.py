"""Tests specific to the PostgreSQL store: batches, raw payloads, migrations, plans, outages."""

from __future__ import annotations

import asyncio
import math
import random
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from ai_feedback import (
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackStorageError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Ok,
)
from ai_feedback._urls import masked_url
from ai_feedback.stores import _pg_schema, postgres
from ai_feedback.stores._pg_schema import ROLLUP_AGGREGATE_SQL
from ai_feedback.stores.postgres import (
    AGGREGATE_SQL,
    FIND_BY_SESSION_SQL,
    FIND_BY_TYPE_SQL,
    LATEST_VERSION,
    MIGRATIONS,
    PostgresFeedbackStore,
    migrate,
)
from tests.fakes import conflict_ids
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema
from tests.stores.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)


def _rating(value: float = 4, *, ago: timedelta = timedelta(0), **context: Any) -> FeedbackItem:
    return FeedbackItem(
        feedback_type=FeedbackType.RATING,
        value=value,
        context=context,
        created_at=datetime.now(UTC) - ago,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A fresh schema name; the schema is dropped after the test, even on failure."""
    async with fresh_schema() as name:
        yield name


@pytest.fixture
async def pg(schema: str) -> AsyncIterator[PostgresFeedbackStore]:
    """An open store in a fresh schema."""
    async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
        yield store


@pytest.fixture
async def db(schema: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A plain connection whose search_path is the test's schema."""
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()


# ------------------------------------------------------------------------ batch writes


async def test_save_many_stores_each_id_once(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Repeats within a batch and ids already stored are kept once; another item conflicts."""
    first, second = _rating(1, session_id="s"), _rating(2, session_id="s")
    assert await pg.save_many([first, second, first]) == Ok([first.id, second.id, first.id])
    third = _rating(3, session_id="s")
    assert await pg.save_many([second, third]) == Ok([second.id, third.id])
    conflict = await pg.save_many([second.replace(value=4), _rating(5)])
    assert conflict_ids(conflict) == (second.id,)
    assert await db.fetchval("SELECT count(*) FROM feedback") == 3
    assert await pg.get(first.id) == first
    assert await pg.get(second.id) == second


async def test_concurrent_overlapping_batches_store_each_id_once(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Batches that share ids and run at the same time all succeed and store each id once."""
    items = [_rating(i % 5 + 1) for i in range(3_000)]
    results = await asyncio.gather(
        *(pg.save_many(items[start : start + 2_000]) for start in (0, 500, 1_000))
    )
    assert all(result.is_ok() for result in results)
    assert await db.fetchval("SELECT count(*) FROM feedback") == len(items)


async def test_save_many_validates_everything_before_writing(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """A bad element raises FeedbackValidationError and nothing of the batch is stored."""
    good = _rating()
    with pytest.raises(FeedbackValidationError, match="'feedback'"):
        await pg.save_many([good, "not an item"])  # type: ignore[list-item]
    assert await pg.save_many([]) == Ok([])
    assert await db.fetchval("SELECT count(*) FROM feedback") == 0


async def test_a_failing_batch_stores_nothing_and_returns_err(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """A row the database refuses (a CHECK) fails the whole batch as Err, not raise."""
    await db.execute("ALTER TABLE feedback ADD CONSTRAINT refuse CHECK (trace_id <> 'refused')")
    good = _rating()
    other = _rating(trace_id="refused")
    result = await pg.save_many([good, other])
    assert result.is_err()
    assert isinstance(result.unwrap_err(), FeedbackStorageError)
    assert isinstance(result.unwrap_err().__cause__, asyncpg.PostgresError)
    assert await db.fetchval("SELECT count(*) FROM feedback") == 0
    assert await pg.save_many([good]) == Ok([good.id])
    assert (await pg.save(other)).is_err()


async def test_raw_payloads_round_trip(pg: PostgresFeedbackStore) -> None:
    """Raw payloads are stored with their batch, read back equal, and the first one wins."""
    item, other = _rating(), _rating()
    payload = {"score": 4.5, "comment": "très bien 👍", "nested": [1, None, {"x": True}]}
    assert await pg.save_many([item, other], raw_payloads={item.id: payload, other.id: None})
    assert await pg.get_raw_payload(item.id) == payload
    assert await pg.save_many([item], raw_payloads={item.id: {"changed": 1}}) == Ok([item.id])
    assert await pg.get_raw_payload(item.id) == payload
    assert await pg.get_raw_payload(other.id) is None
    assert await pg.get_raw_payload("missing") is None
    third = _rating()
    assert await pg.save_many([third], raw_payloads={}) == Ok([third.id])


@pytest.mark.parametrize(
    ("payloads", "rule"),
    [
        ({"not-in-batch": {}}, "only name ids of items in the batch"),
        ([("id", {})], "must be a dict"),
    ],
)
async def test_bad_raw_payloads_raise(pg: PostgresFeedbackStore, payloads: Any, rule: str) -> None:
    """raw_payloads must name ids of the batch and be a mapping."""
    with pytest.raises(FeedbackValidationError, match=rule):
        await pg.save_many([_rating()], raw_payloads=payloads)


async def test_raw_payloads_must_be_json(pg: PostgresFeedbackStore) -> None:
    """A raw payload that is not JSON raises before anything is written."""
    item = _rating()
    with pytest.raises(FeedbackValidationError, match="must hold JSON values"):
        await pg.save_many([item], raw_payloads={item.id: {"when": object()}})
    assert await pg.get(item.id) is None


async def test_items_round_trip_exactly(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Every kind of item comes back equal: value types, nested dicts, microseconds, UTC."""
    paris = timezone(timedelta(hours=1))
    items = [
        _rating(4, session_id="s", owner_id="user-1"),
        _rating(4.5, session_id="s"),
        _rating(4.0, session_id="s"),
        FeedbackItem(
            feedback_type=FeedbackType.TEXT,
            value="naïve 😀 text",
            context={"session_id": "s", "tags": ["a"], "big": 2**64 - 1, "low": -(2**63)},
            metadata={"deep": {"list": [1, 2.5, None, True]}},
            created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=paris),
        ),
        FeedbackItem(
            feedback_type=FeedbackType.CORRECTION,
            value={"original": "", "corrected": "b"},
            context={"session_id": "s"},
        ),
        FeedbackItem(
            feedback_type=FeedbackType.LABEL,
            value={"label": "l", "input": {"x": [1, {"y": "z"}]}},
            context={"session_id": "s"},
        ),
    ]
    assert (await pg.save_many(items[:3])).is_ok()
    for item in items[3:]:
        assert (await pg.save(item)).is_ok()
    for item in items:
        got = await pg.get(item.id)
        assert got == item
        assert got is not None
        assert type(got.value) is type(item.value)
        assert got.created_at.tzinfo == UTC
    assert sorted(i.id for i in await pg.find_by_session("s")) == sorted(i.id for i in items)
    assert await db.fetchval("SELECT owner_id FROM feedback WHERE id = $1", items[0].id) == "user-1"
    assert await pg.get("missing") is None
    with pytest.raises(FeedbackValidationError, match="'item_id'"):
        await pg.get("")


async def test_stats_equal_the_memory_store(pg: PostgresFeedbackStore) -> None:
    """stats() and aggregate() give the memory store's figures for the same random data."""
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    memory = MemoryFeedbackStore()
    items = []
    for _ in range(400):
        kind = rng.choice(list(FeedbackType))
        context = {"model": rng.choice(["a", "b", "c"]), "provider": rng.choice(["x", "y"])}
        if rng.random() < 0.2:
            del context["model"]
        ago = timedelta(hours=rng.random() * 30)
        value = rng.choice([1, 2, 3, 4, 5, 2.5]) if rng.random() < 0.8 else rng.random() * 10
        items.append(
            _rating(value, ago=ago, **context)
            if kind is FeedbackType.RATING
            else FeedbackItem(
                feedback_type=kind,
                value="t" if kind is FeedbackType.TEXT else {"label": "l", "input": None},
                context=context,
                created_at=datetime.now(UTC) - ago,
            )
            if kind is not FeedbackType.CORRECTION
            else FeedbackItem(
                feedback_type=kind,
                value={"original": "a", "corrected": "b"},
                context=context,
                created_at=datetime.now(UTC) - ago,
            )
        )
    await memory.save_many(items)
    assert (await pg.save_many(items)).is_ok()
    for window in (24, 48):
        for model, provider in ((None, None), ("a", None), (None, "x"), ("b", "y"), ("z", None)):
            expected = await memory.stats(window_hours=window, model=model, provider=provider)
            got = await pg.stats(window_hours=window, model=model, provider=provider)
            _assert_close(got, expected)
            summary = await pg.aggregate(window_hours=window, model=model, provider=provider)
            _assert_close(summary, expected.summary)


def _assert_close(got: Any, expected: Any) -> None:
    if isinstance(got, FeedbackStats):
        got, expected = got.to_dict(), expected.to_dict()
    elif hasattr(got, "__dataclass_fields__"):
        got, expected = vars_of(got), vars_of(expected)
    if isinstance(expected, dict):
        assert isinstance(got, dict)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            _assert_close(got[key], value)
    elif isinstance(expected, float):
        assert math.isclose(got, expected, rel_tol=1e-12)
    else:
        assert got == expected


def vars_of(record: Any) -> dict[str, Any]:
    """Return a dataclass's fields as a dict."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


# -------------------------------------------------------------------------- migrations


async def test_migrations_are_recorded(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Opening a store applies every migration and records each version once."""
    rows = await db.fetch("SELECT version, description FROM schema_version ORDER BY version")
    assert [tuple(row) for row in rows] == [(m.version, m.description) for m in MIGRATIONS]
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


async def test_running_migrations_again_changes_nothing(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record], schema: str
) -> None:
    """migrate() on an up-to-date schema returns the latest version and records nothing."""
    before = await db.fetch("SELECT * FROM schema_version ORDER BY version")
    assert await migrate(POSTGRES_URL, schema=schema) == LATEST_VERSION
    assert await migrate(POSTGRES_URL, schema=schema, target=1) == LATEST_VERSION
    async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema):
        pass
    assert await db.fetch("SELECT * FROM schema_version ORDER BY version") == before


async def test_upgrade_from_v1_keeps_rows_and_enables_new_features(
    schema: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Rows written at version 1 survive the upgrade, get owner_id, and new features work."""
    assert await migrate(POSTGRES_URL, schema=schema, target=1) == 1
    old = _rating(3, session_id="s", owner_id="user-7")
    await db.execute(
        "INSERT INTO feedback (id, feedback_type, created_at, rating, session_id, value, "
        "context, metadata) VALUES ($1, 'rating', $2, 3, 's', '3', $3::jsonb, '{}')",
        old.id,
        old.created_at,
        '{"session_id": "s", "owner_id": "user-7"}',
    )
    assert await db.fetchval("SELECT to_regclass('raw_payload')") is None
    async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store:
        assert await store.get(old.id) == old
        new = _rating(5, session_id="s")
        assert await store.save_many([new], raw_payloads={new.id: {"score": 5}}) == Ok([new.id])
        assert await store.get_raw_payload(new.id) == {"score": 5}
        assert [i.id for i in await store.find_by_session("s")] == [new.id, old.id]
        assert (await store.aggregate()).average_rating == 4.0
    assert await db.fetchval("SELECT owner_id FROM feedback WHERE id = $1", old.id) == "user-7"
    assert await db.fetchval("SELECT max(version) FROM schema_version") == LATEST_VERSION


async def test_concurrent_opens_migrate_once(
    schema: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Stores opened at the same time on a new schema wait for each other's migrations."""
    stores = await asyncio.gather(
        *(PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) for _ in range(4))
    )
    for store in stores:
        await store.aclose()
    assert await db.fetchval("SELECT count(*) FROM schema_version") == LATEST_VERSION


async def test_a_newer_schema_is_refused(
    schema: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """A schema migrated by a newer ai-feedback makes open() fail with a clear message."""
    await migrate(POSTGRES_URL, schema=schema)
    await db.execute("INSERT INTO schema_version (version, description) VALUES (99, 'future')")
    with pytest.raises(FeedbackStorageError, match="newer than this ai-feedback supports"):
        await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema)


@pytest.mark.parametrize("target", [0, LATEST_VERSION + 1, True, "2"])
async def test_migrate_rejects_bad_targets(target: Any) -> None:
    """migrate() accepts only a known schema version as target."""
    with pytest.raises(FeedbackValidationError, match="'target'"):
        await migrate(POSTGRES_URL, target=target)


async def test_the_command_line_migrates(
    schema: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """The command ``python -m ai_feedback.stores.postgres migrate`` brings a schema up."""
    for extra, version in ((["--target", "1"], 1), ([], LATEST_VERSION)):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ai_feedback.stores.postgres",
            "migrate",
            POSTGRES_URL,
            "--schema",
            schema,
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert out.decode() == f"schema version {version}\n"
    assert await db.fetchval("SELECT max(version) FROM schema_version") == LATEST_VERSION


def test_the_command_line_reports_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """A migration that cannot connect exits with status 1 and names host:port on stderr."""
    port = _free_port()
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/test"
    assert postgres.main(["migrate", url]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err
    assert "s3cret" not in err


# ------------------------------------------------------------------------- query plans


async def test_queries_use_their_indexes(
    pg: PostgresFeedbackStore, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """On 20,000 analyzed rows, each query's exact SQL is planned on its intended index."""
    rng = random.Random(3)  # noqa: S311 - reproducible test data
    kinds = list(FeedbackType)
    values = {
        FeedbackType.TEXT: "t",
        FeedbackType.CORRECTION: {"original": "a", "corrected": "b"},
        FeedbackType.LABEL: {"label": "l", "input": None},
    }
    items = [
        FeedbackItem(
            feedback_type=kind,
            value=values.get(kind, rng.randint(1, 5)),
            context={
                "session_id": f"session-{i // 10}",
                "model": f"model-{rng.randrange(10)}",
                "provider": rng.choice(["openai", "anthropic", "local"]),
            },
            created_at=NOW - timedelta(hours=30 * (1 - i / 20_000)),
        )
        # Labels are 1%: find_by_type's index is for rare types; for a common one, a
        # backward scan of feedback_created finds `limit` rows about as fast.
        for i, kind in enumerate(rng.choices(kinds, weights=[60, 30, 9, 1], k=20_000))
    ]
    for start in range(0, len(items), 10_000):
        assert (await pg.save_many(items[start : start + 10_000])).is_ok()
    await db.execute("VACUUM ANALYZE feedback")
    since = NOW - timedelta(hours=24)
    for sql, params, index in (
        (FIND_BY_SESSION_SQL, ["session-42"], "feedback_session_created"),
        (FIND_BY_TYPE_SQL, ["label", 100], "feedback_type_created"),
        (AGGREGATE_SQL[True, False, False, False], [since, "model-3"], "feedback_model_created"),
    ):
        plan = "\n".join(row[0] for row in await db.fetch(f"EXPLAIN {sql}", *params))
        assert re.search(rf"Scan (Backward )?(using|on) {index}\b", plan), plan
        assert "Seq Scan" not in plan, plan
    # What the store runs: the rollup plus the window's first partial hour, by index. The
    # window starts 35 minutes into an hour, whatever the clock says, so that the partial
    # hour holds the same share of rows on every run (and the plan does not change).
    first = (NOW - timedelta(hours=24)).replace(minute=35, second=0, microsecond=0)
    whole = first.replace(minute=0) + timedelta(hours=1)
    query = ROLLUP_AGGREGATE_SQL[True, False, False, False]
    params = [first, "model-3", whole, whole, 1]
    plan = "\n".join(row[0] for row in await db.fetch(f"EXPLAIN {query}", *params))
    # Either time index fits a range this small; the planner picks by its estimates.
    assert re.search(r"Index (Only )?Scan using feedback_(model_)?created on feedback\b", plan)
    assert not re.search(r"Seq Scan on feedback\b(?!_rollup)", plan), plan
    assert len(await pg.find_by_session("session-42")) == 10


# ----------------------------------------------------------------------------- outages


async def test_an_unreachable_server_gives_err_and_the_pool_recovers(schema: str) -> None:
    """While the server is cut off, save returns Err quickly; once back, the same store works."""
    async with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        async with await PostgresFeedbackStore.open(
            url, schema=schema, command_timeout=2, connect_timeout=2
        ) as store:
            before = _rating(session_id="s")
            assert await store.save(before) == Ok(before.id)
            await proxy.cut()
            lost = _rating(session_id="s")
            started = time.monotonic()
            result = await store.save(lost)
            assert time.monotonic() - started < 3
            assert result.is_err()
            error = result.unwrap_err()
            assert isinstance(error, FeedbackStorageError)
            assert f"127.0.0.1:{proxy.port}" in str(error)
            assert error.__cause__ is not None
            batch = await store.save_many([_rating(session_id="s"), _rating(session_id="s")])
            assert isinstance(batch.unwrap_err(), FeedbackStorageError)
            with pytest.raises(FeedbackStorageError):
                await store.find_by_session("s")
            await proxy.restore()
            after = _rating(session_id="s")
            assert await store.save(after) == Ok(after.id)
            assert [i.id for i in await store.find_by_session("s")] == [after.id, before.id]


async def test_a_silent_network_times_out_and_the_pool_recovers(schema: str) -> None:
    """When the network stalls, writes fail after command_timeout; afterwards they succeed."""
    async with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        async with await PostgresFeedbackStore.open(
            url, schema=schema, command_timeout=0.5, connect_timeout=0.5
        ) as store:
            assert (await store.save(_rating())).is_ok()
            await proxy.stall()
            started = time.monotonic()
            result = await store.save_many([_rating(), _rating()])
            assert time.monotonic() - started < 2
            assert "command_timeout" in str(result.unwrap_err())
            await proxy.restore()
            assert (await store.save_many([_rating(), _rating()])).is_ok()
            assert (await store.aggregate()).total_count == 3
            await proxy.stall()
            started = time.monotonic()
            await store.aclose()
            assert time.monotonic() - started < 2


async def test_open_on_a_closed_port_names_host_and_port() -> None:
    """open() on a port nobody listens on raises FeedbackStorageError naming host:port only."""
    port = _free_port()
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/test"
    with pytest.raises(FeedbackStorageError) as info:
        await PostgresFeedbackStore.open(url, connect_timeout=2)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret" not in str(info.value)


async def test_a_closed_store_refuses_work(schema: str) -> None:
    """After aclose (which may be repeated) writes return Err and reads raise."""
    url = POSTGRES_URL.replace("postgres@", "postgres:hunter2@")
    store = await PostgresFeedbackStore.open(url, schema=schema, min_size=0, max_size=2)
    assert "open" in repr(store)
    assert "hunter2" not in repr(store)
    assert store.schema == schema
    await store.aclose()
    await store.aclose()
    assert "closed" in repr(store)
    assert isinstance((await store.save(_rating())).unwrap_err(), FeedbackStorageError)
    with pytest.raises(FeedbackStorageError, match="closed"):
        await store.find_by_type(FeedbackType.RATING)


async def test_a_store_collected_while_open_warns(schema: str) -> None:
    """A store garbage-collected without aclose() warns with ResourceWarning."""

    async def open_and_drop() -> asyncpg.Pool[asyncpg.Record]:
        store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema)
        pool = store._pool
        assert pool is not None
        return pool  # the store itself is dropped here, still open

    with pytest.warns(ResourceWarning, match="was never closed"):
        pool = await open_and_drop()
    await pool.close()


@pytest.mark.parametrize(
    ("url", "where", "shown"),
    [
        ("postgresql://u:pw@db.example/x", "db.example:5432", "postgresql://u:****@db.example/x"),
        (
            "postgresql://u@db.example/x?password=pw&sslmode=require",
            "db.example:5432",
            "postgresql://u@db.example/x?password=****&sslmode=require",
        ),
        ("postgres://db.example:6543/x", "db.example:6543", "postgres://db.example:6543/x"),
        ("postgresql:///x", "localhost:5432", "postgresql:///x"),
    ],
)
def test_urls_are_shown_as_host_port_without_password(url: str, where: str, shown: str) -> None:
    """Messages name a URL's host:port (default port 5432) and never its password."""
    assert _pg_schema.check_url(url) == where
    assert masked_url(url) == shown


# -------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("mysql://root@localhost/db", {}, "url"),
        (None, {}, "url"),
        ("postgresql://u:pw@h:notaport/db", {}, "url"),
        ("postgresql://u:pw@[::1/db", {}, "url"),
        (POSTGRES_URL, {"min_size": -1}, "min_size"),
        (POSTGRES_URL, {"max_size": 0}, "max_size"),
        (POSTGRES_URL, {"min_size": 3, "max_size": 2}, "min_size"),
        (POSTGRES_URL, {"max_size": True}, "max_size"),
        (POSTGRES_URL, {"command_timeout": 0}, "command_timeout"),
        (POSTGRES_URL, {"command_timeout": float("inf")}, "command_timeout"),
        (POSTGRES_URL, {"connect_timeout": "5"}, "connect_timeout"),
    ],
)
async def test_bad_open_arguments_raise(url: Any, options: dict[str, Any], field: str) -> None:
    """open() checks its arguments before connecting and names the bad one."""
    with pytest.raises(FeedbackValidationError) as info:
        await PostgresFeedbackStore.open(url, **options)
    assert info.value.field == field


@pytest.mark.parametrize(
    "name",
    ["x; DROP TABLE y", 'a"b', "", "1abc", "a-b", "pg_catalog", "x" * 64, "ünï", " x", 5],
)
async def test_schema_names_are_plain_identifiers(name: Any) -> None:
    """Schema names that are not plain identifiers (injection attempts included) are refused."""
    with pytest.raises(FeedbackValidationError) as info:
        await PostgresFeedbackStore.open(POSTGRES_URL, schema=name)
    assert info.value.field == "schema"
    with pytest.raises(FeedbackValidationError):
        await migrate(POSTGRES_URL, schema=name)


async def test_mixed_case_schema_names_are_quoted(db: asyncpg.Connection[asyncpg.Record]) -> None:
    """A schema name with capitals is used exactly as given, not folded to lower case."""
    async with fresh_schema() as lower:
        name = lower.upper()
        try:
            async with await PostgresFeedbackStore.open(POSTGRES_URL, schema=name) as store:
                assert (await store.save(_rating())).is_ok()
            found = await db.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name)
            assert found == 1
        finally:
            await db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def test_a_rebuild_that_times_out_names_its_own_timeout(
    pg: PostgresFeedbackStore,
    db: asyncpg.Connection[asyncpg.Record],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebuild waiting past its (day-long) timeout says so, not the pool's command_timeout."""
    monkeypatch.setattr(postgres, "_COPY_TIMEOUT_S", 0.3)
    assert (await pg.save_many([_rating(5, model="m")])).is_ok()
    async with db.transaction():
        await db.execute("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(FeedbackStorageError, match=r"no answer within 0\.3 s\.") as info:
            await pg.rebuild_rollup()
    assert "command_timeout" not in str(info.value)
    assert await pg.rebuild_rollup() == 1  # the lock gone, the store works on


async def test_waiting_for_a_connection_names_the_pools_timeout(schema: str) -> None:
    """A rebuild that finds no free connection says command_timeout, not its own limit."""
    store = await PostgresFeedbackStore.open(
        POSTGRES_URL, schema=schema, min_size=1, max_size=1, command_timeout=0.3
    )
    async with store:
        pool: Any = store._pool
        async with pool.acquire():  # the only connection, held
            with pytest.raises(FeedbackStorageError, match=r"0\.3 s \(command_timeout\)"):
                await store.rebuild_rollup()
        assert await store.rebuild_rollup() == 0


async def test_an_export_whose_reader_stops_says_why(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that takes nothing for the stall limit gets an error saying so.

    The connection goes back to the pool: with a pool of one, the store works on.
    """
    monkeypatch.setattr(postgres, "_COPY_STALL_S", 0.2)
    store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema, max_size=1)
    async with store:
        padding = "x" * 2000
        for _ in range(4):
            batch = [_rating(4, model="m", note=padding) for _ in range(1000)]
            assert (await store.save_many(batch)).is_ok()
        lines = store.raw_lines()
        assert await anext(lines)
        await asyncio.sleep(0.6)  # the server's side fills the queue, then waits in vain
        with pytest.raises(FeedbackStorageError, match=r"the reader took nothing for 0\.2 s"):
            async for _ in lines:
                pass
        assert (await store.aggregate(window_hours=1)).total_count == 4000
        exported = b"".join([chunk async for chunk in store.raw_lines()])
        assert exported.count(b"\n") == 4000


async def test_concurrent_batches_and_deletions_do_not_deadlock_on_the_rollup() -> None:
    """Writers and deleters lock the rollup's rows in one order: no batch fails.

    With raw payloads, and batches sent again while their items are being deleted.

    The rollup still equals a recount of the items afterwards.
    """
    async with fresh_schema() as schema:
        store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema, max_size=8)
        now = datetime.now(UTC)
        errors: list[str] = []

        async def writer(seed: int) -> None:
            rng = random.Random(seed)  # noqa: S311 - test data
            for _ in range(12):
                batch = [
                    FeedbackItem(
                        FeedbackType.RATING,
                        rng.randint(1, 5),
                        context={
                            "model": rng.choice("abc"),
                            "owner_id": rng.choice("xy"),
                            "session_id": f"s{seed}",
                        },
                        created_at=now - timedelta(minutes=rng.randrange(600)),
                    )
                    for _ in range(150)
                ]
                raws = {item.id: {"score": item.value} for item in batch}
                for chosen in (batch, batch[:50]):  # the second: a retry while deleting
                    raw = {item.id: raws[item.id] for item in chosen}
                    saved = await store.save_many(chosen, raw_payloads=raw)
                    if saved.is_err():
                        errors.append(str(saved.unwrap_err()))
                    if rng.random() < 0.5:
                        await store.delete(FeedbackFilter(session_id=f"s{seed}"), limit=100)

        await asyncio.gather(*(writer(seed) for seed in range(8)))
        assert errors == []
        counted = await store.stats(window_hours=24)
        await store.rebuild_rollup()
        assert await store.stats(window_hours=24) == counted
        await store.aclose()


async def test_a_batch_sent_again_while_its_item_is_deleted_does_not_deadlock() -> None:
    """A retried batch, raw payloads included, racing the deletion of one of its items.

    The deletion locks the rollup before the raw payloads, as writers do.
    """
    async with fresh_schema() as schema:
        store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema, max_size=8)
        now = datetime.now(UTC).replace(minute=30)
        errors: list[str] = []

        def rated(item_id: str) -> FeedbackItem:
            return FeedbackItem(
                FeedbackType.RATING, 5, id=item_id, context={"model": "m"}, created_at=now
            )

        async def write(batch: list[FeedbackItem]) -> None:
            saved = await store.save_many(batch, raw_payloads={i.id: {"p": 1} for i in batch})
            if saved.is_err():
                errors.append(str(saved.unwrap_err()))

        async def delete(item_id: str) -> None:
            try:
                await store.delete(FeedbackFilter(item_id=item_id))
            except FeedbackStorageError as exc:
                errors.append(str(exc))

        for n in range(10):
            first = rated(f"x{n}")
            await write([first])
            others = [rated(f"y{n}-{k}") for k in range(20)]
            await asyncio.gather(write([first, *others]), delete(first.id))
        assert errors == []
        await store.aclose()


async def _deletion_holding_its_locks(schema: str, item_id: str) -> tuple[asyncpg.Connection, Any]:
    """A deletion of ``item_id`` stopped after taking its locks, in `delete`'s order."""
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    transaction = conn.transaction()
    await transaction.start()
    await postgres._lock_for_deletion(conn, [item_id])
    return conn, transaction


async def _finish_deletion(conn: asyncpg.Connection, transaction: Any, item_id: str) -> None:
    await conn.execute("DELETE FROM raw_payload WHERE item_id = ANY($1::text[])", [item_id])
    await conn.fetchrow(_pg_schema.DELETE_ITEMS_SQL, [item_id])
    await transaction.commit()
    await conn.close()


async def test_a_batch_sent_again_during_a_deletion_does_not_bring_back_a_raw_payload(
    schema: str,
) -> None:
    """The retried batch waits for the deletion; the deleted item's payload stays deleted."""
    store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema)
    now = datetime.now(UTC).replace(minute=30)
    first = FeedbackItem(FeedbackType.RATING, 5, id="x", context={"model": "m"}, created_at=now)
    other = FeedbackItem(FeedbackType.RATING, 5, id="y", context={"model": "m"}, created_at=now)
    await store.save_many([first], raw_payloads={"x": {"p": 1}})
    conn, transaction = await _deletion_holding_its_locks(schema, "x")
    retry = asyncio.create_task(
        store.save_many([first, other], raw_payloads={"x": {"p": 1}, "y": {"p": 2}})
    )
    try:
        await asyncio.sleep(0.3)
        blocked = not retry.done()  # on the rollup row the deletion locked (same key)
    finally:
        await _finish_deletion(conn, transaction, "x")
    assert blocked
    assert (await retry).is_ok()
    assert await store.get("x") is None
    assert await store.get_raw_payload("x") is None
    assert await store.get_raw_payload("y") == {"p": 2}
    await store.aclose()


async def test_a_rollup_rebuild_during_a_deletion_waits_for_it(schema: str) -> None:
    """The deletion takes the table's lock before the rollup's rows: a rebuild waits."""
    store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema)
    now = datetime.now(UTC).replace(minute=30)
    items = [
        FeedbackItem(FeedbackType.RATING, 5, id=i, context={"model": "m"}, created_at=now)
        for i in ("x", "z")
    ]
    await store.save_many(items)
    conn, transaction = await _deletion_holding_its_locks(schema, "x")
    rebuild = asyncio.create_task(store.rebuild_rollup())
    try:
        await asyncio.sleep(0.3)
        waited = not rebuild.done()
    finally:
        await _finish_deletion(conn, transaction, "x")
    assert waited
    assert await rebuild == 1
    assert (await store.aggregate(window_hours=24 * 365)).total_count == 1
    await store.aclose()
