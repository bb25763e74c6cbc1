"""Tests specific to the SQLite store: durability, migrations, failures, query plans."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ai_feedback import (
    Err,
    FeedbackItem,
    FeedbackStorageError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    Ok,
)
from ai_feedback.stores import sqlite as sqlite_store
from ai_feedback.stores._sqlite_schema import ROLLUP_AGGREGATE_SQL, ROLLUP_STATS_SQL
from ai_feedback.stores.sqlite import (
    AGGREGATE_SQL,
    FIND_BY_SESSION_SQL,
    FIND_BY_TYPE_SQL,
    LATEST_VERSION,
    MIGRATIONS,
    STATS_SQL,
    SQLiteFeedbackStore,
    migrate,
)
from tests.fakes import conflict_ids


def _item(
    kind: FeedbackType = FeedbackType.RATING,
    value: Any = 4,
    *,
    ago_s: float = 0,
    **context: Any,
) -> FeedbackItem:
    return FeedbackItem(
        feedback_type=kind,
        value=value,
        context=context,
        created_at=datetime.now(UTC) - timedelta(seconds=ago_s),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteFeedbackStore]:
    """A store on a fresh file, closed afterwards."""
    async with await SQLiteFeedbackStore.open(tmp_path / "feedback.db") as opened:
        yield opened


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def _versions(path: Path) -> list[tuple[Any, ...]]:
    with _connect(path) as conn:
        return conn.execute("SELECT * FROM schema_version ORDER BY version").fetchall()


# ----------------------------------------------------------------------------- storage


async def test_items_survive_close_and_reopen(tmp_path: Path) -> None:
    """What was saved, and its raw payload, is read back unchanged after reopening the file."""
    path = tmp_path / "durable.db"
    first = _item(value=4.5, session_id="s", model="m", ago_s=60)
    second = _item(FeedbackType.TEXT, "fine", session_id="s")
    async with await SQLiteFeedbackStore.open(path) as store:
        assert await store.save(first) == Ok(first.id)
        assert await store.save_many([second], raw_payloads={second.id: {"raw": [1]}}) == Ok(
            [second.id]
        )
    async with await SQLiteFeedbackStore.open(f"sqlite:///{path}") as store:
        assert await store.find_by_session("s") == [second, first]
        assert await store.get(first.id) == first
        assert await store.get_raw_payload(second.id) == {"raw": [1]}
        assert (await store.aggregate()).total_count == 2


async def test_items_round_trip_exactly(store: SQLiteFeedbackStore) -> None:
    """Ints stay ints, floats stay floats, and created_at keeps its microseconds in UTC."""
    created = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    items = [
        FeedbackItem(feedback_type=FeedbackType.RATING, value=4, created_at=created),
        FeedbackItem(feedback_type=FeedbackType.RATING, value=4.0, created_at=created),
        FeedbackItem(
            feedback_type=FeedbackType.LABEL,
            value={"label": "ünïcødé ✓", "input": {"nested": [1, 2.5, None, True]}},
            context={"owner_id": "user-1", "extra": {"deep": ["x"]}},
            metadata={"source": "test", "n": 10**15},
            created_at=created,
        ),
    ]
    assert (await store.save_many(items)).is_ok()
    back = [await store.get(item.id) for item in items]
    assert back == items
    assert [type(i.value) for i in back[:2] if i] == [int, float]
    assert back[2] is not None
    assert back[2].created_at.tzinfo is UTC
    assert back[2].created_at == created
    assert await store.get("missing") is None


async def test_wal_mode_is_on(store: SQLiteFeedbackStore) -> None:
    """The database file is in WAL journal mode with a write-ahead log beside it."""
    await store.save(_item())
    with _connect(Path(store.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert Path(store.path + "-wal").exists()


async def test_commits_are_fsynced(store: SQLiteFeedbackStore) -> None:
    """The store's own connection commits with synchronous=FULL (2): fsync'd each time."""
    async with store._connection().execute("PRAGMA synchronous") as cursor:
        assert await cursor.fetchone() == (2,)


async def test_save_many_is_idempotent_within_and_across_batches(
    store: SQLiteFeedbackStore,
) -> None:
    """A repeated item, in one batch or across batches, is stored once; another conflicts."""
    a, b = _item(value=1, session_id="s"), _item(value=2, session_id="s", ago_s=1)
    batch = [a, b, a]
    assert await store.save_many(batch) == Ok([a.id, b.id, a.id])
    assert await store.save_many(batch) == Ok([a.id, b.id, a.id])
    assert conflict_ids(await store.save(b.replace(value=3))) == (b.id,)
    clash = await store.save_many([_item(session_id="s"), a.replace(value=5)])
    assert conflict_ids(clash) == (a.id,)
    assert await store.find_by_session("s") == [a, b]
    assert (await store.aggregate()).total_count == 2
    assert await store.save_many([]) == Ok([])


async def test_raw_payloads_round_trip(store: SQLiteFeedbackStore) -> None:
    """Raw payloads come back exactly as given; the first one stored for an id is kept."""
    payload = {"trace_id": "t", "score": 4.25, "n": 7, "tags": ["ü", None, False], "empty": {}}
    a, b = _item(), _item()
    raws = {a.id: payload, b.id: "plain string"}
    assert await store.save_many([a, b], raw_payloads=raws) == Ok([a.id, b.id])
    assert await store.save_many([a], raw_payloads={a.id: "replacement"}) == Ok([a.id])
    assert await store.get_raw_payload(a.id) == payload
    assert await store.get_raw_payload(b.id) == "plain string"
    c = _item()
    await store.save(c)
    assert await store.get_raw_payload(c.id) is None


@pytest.mark.parametrize(
    ("raw_payloads", "rule"),
    [
        ({"not-in-batch": 1}, "ids of items in the batch"),
        ("not a mapping", "must be a dict"),
    ],
)
async def test_bad_raw_payloads_store_nothing(
    store: SQLiteFeedbackStore, raw_payloads: Any, rule: str
) -> None:
    """Raw payloads for unknown ids, or not in a dict, raise and nothing is stored."""
    item = _item(session_id="s")
    with pytest.raises(FeedbackValidationError, match=rule) as info:
        await store.save_many([item], raw_payloads=raw_payloads)
    assert info.value.field == "raw_payloads"
    assert await store.find_by_session("s") == []


async def test_raw_payload_that_is_not_json_stores_nothing(store: SQLiteFeedbackStore) -> None:
    """A raw payload JSON cannot hold raises FeedbackValidationError and stores nothing."""
    item = _item(session_id="s")
    with pytest.raises(FeedbackValidationError, match="JSON"):
        await store.save_many([item], raw_payloads={item.id: {1, 2}})
    assert await store.find_by_session("s") == []


async def test_save_many_validates_every_item_before_writing(store: SQLiteFeedbackStore) -> None:
    """One invalid element raises and none of the batch is stored."""
    good = _item(session_id="s")
    with pytest.raises(FeedbackValidationError) as info:
        await store.save_many([good, "not an item"])  # type: ignore[list-item]
    assert info.value.field == "feedback"
    assert await store.find_by_session("s") == []


async def test_text_json_cannot_hold_is_refused(store: SQLiteFeedbackStore) -> None:
    """A text with a lone surrogate (not encodable as JSON) is refused before any store."""
    with pytest.raises(FeedbackValidationError, match="lone surrogates"):
        await store.save(_item(FeedbackType.TEXT, "half a pair: \ud800"))
    assert (await store.aggregate()).total_count == 0


async def test_huge_limit_returns_everything(store: SQLiteFeedbackStore) -> None:
    """A limit beyond SQLite's integers is accepted and means no limit."""
    items = [_item(ago_s=i) for i in range(3)]
    await store.save_many(items)
    assert await store.find_by_type(FeedbackType.RATING, limit=2**70) == items


async def test_stats_equal_the_memory_store(store: SQLiteFeedbackStore) -> None:
    """For the same items, stats() equals the reference in-memory store's for every filter."""
    memory = MemoryFeedbackStore()
    items = [
        _item(value=v, model=m, provider=p, ago_s=i * 60)
        for i, (v, m, p) in enumerate(
            [(5, "a", "x"), (1, "a", "y"), (3.5, "b", "x"), (3.5, "b", "x"), (2, "c", "y")]
        )
    ]
    items += [
        _item(FeedbackType.TEXT, "t", model="a", provider="x"),
        _item(FeedbackType.CORRECTION, {"original": "a", "corrected": "b"}, model="b"),
        _item(FeedbackType.LABEL, {"label": "l", "input": None}, provider="y"),
        _item(value=4, model="a", provider="x", ago_s=3 * 86400),
    ]
    await store.save_many(items)
    await memory.save_many(items)
    for model, provider in [(None, None), ("a", None), (None, "x"), ("b", "x"), ("zz", None)]:
        ours = await store.stats(model=model, provider=provider)
        reference = await memory.stats(model=model, provider=provider)
        assert ours == reference, (model, provider)
        summary = await store.aggregate(model=model, provider=provider)
        assert summary == reference.summary
    week = await store.stats(window_hours=24 * 7)
    assert week == await memory.stats(window_hours=24 * 7)


async def test_cancelled_batch_leaves_no_transaction_open(tmp_path: Path) -> None:
    """Cancelling save_many mid-transaction rolls it back and the store keeps working."""
    path = tmp_path / "cancel.db"
    async with await SQLiteFeedbackStore.open(path, busy_timeout_ms=5_000) as store:
        item = _item(session_id="s")
        with _connect(path) as other:
            other.execute("BEGIN IMMEDIATE")
            task = asyncio.create_task(store.save_many([item, _item(session_id="s")]))
            await asyncio.sleep(0.1)  # the store's BEGIN now waits for `other`
            task.cancel()
            other.execute("ROLLBACK")
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await store.find_by_session("s") == []
        other_item = _item(session_id="s", ago_s=1)
        assert await store.save_many([item, other_item]) == Ok([item.id, other_item.id])
        assert await store.find_by_session("s") == [item, other_item]


# -------------------------------------------------------------------------- migrations


async def test_fresh_database_records_every_version(tmp_path: Path) -> None:
    """Opening a new file applies and records every migration, in order."""
    path = tmp_path / "fresh.db"
    async with await SQLiteFeedbackStore.open(path):
        pass
    rows = _versions(path)
    assert [(v, d) for v, d, _ in rows] == [(m.version, m.description) for m in MIGRATIONS]
    assert all(datetime.fromisoformat(applied).tzinfo for _, _, applied in rows)


async def test_rerunning_migrations_is_a_no_op(tmp_path: Path) -> None:
    """migrate() and open() on an up-to-date database change nothing."""
    path = tmp_path / "again.db"
    assert await migrate(path) == LATEST_VERSION
    before = _versions(path)
    with _connect(path) as conn:
        schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert await migrate(f"sqlite:///{path}") == LATEST_VERSION
    assert await migrate(path, target=1) == LATEST_VERSION  # no downgrades
    async with await SQLiteFeedbackStore.open(path):
        pass
    assert _versions(path) == before
    with _connect(path) as conn:
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


async def test_upgrade_from_v1_keeps_rows_and_enables_new_features(tmp_path: Path) -> None:
    """A v1 database with rows upgrades to the latest: rows survive and v2 features work."""
    path = tmp_path / "v1.db"
    assert await migrate(path, target=1) == 1
    old = _item(value=3, session_id="s", owner_id="user-1", ago_s=30)
    with _connect(path) as conn:
        # A row exactly as version 1 of the store wrote it.
        conn.execute(
            "INSERT INTO feedback (id, feedback_type, value, rating, context, metadata, "
            "trace_id, session_id, model, provider, created_at) "
            "VALUES (?, 'rating', '3', 3.0, ?, '{}', NULL, 's', NULL, NULL, ?)",
            (
                old.id,
                orjson.dumps(old.context).decode(),
                (old.created_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
            ),
        )
    async with await SQLiteFeedbackStore.open(path) as store:
        assert [v for v, _, _ in _versions(path)] == list(range(1, LATEST_VERSION + 1))
        assert await store.get(old.id) == old
        new = _item(session_id="s", owner_id="user-2")
        assert (await store.save_many([new], raw_payloads={new.id: {"v": 2}})).is_ok()
        assert await store.get_raw_payload(new.id) == {"v": 2}
        assert await store.find_by_session("s") == [new, old]
    with _connect(path) as conn:
        owners = conn.execute("SELECT owner_id FROM feedback ORDER BY created_at").fetchall()
    assert owners == [("user-1",), ("user-2",)]


async def test_concurrent_migrators_apply_each_migration_once(tmp_path: Path) -> None:
    """A migration another connection applies while we wait for the lock is not re-applied."""
    path = tmp_path / "race.db"
    with _connect(path) as other:
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(migrate(path))
        await asyncio.sleep(0.2)  # migrate() saw version 0 and now waits for the lock
        other.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL, "
            "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for statement in MIGRATIONS[0].statements:
            other.execute(statement)
        other.execute("INSERT INTO schema_version VALUES (1, 'by the other process', 'then')")
        other.execute("COMMIT")
        assert await task == LATEST_VERSION
    assert [(v, d) for v, d, _ in _versions(path)] == [
        (1, "by the other process"),
        *((m.version, m.description) for m in MIGRATIONS[1:]),
    ]


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer version raises a FeedbackStorageError saying so."""
    path = tmp_path / "future.db"
    await migrate(path)
    with _connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 'now')")
    with pytest.raises(FeedbackStorageError, match="schema version 99, newer"):
        await SQLiteFeedbackStore.open(path)


@pytest.mark.parametrize("target", [0, LATEST_VERSION + 1, True, "2"])
async def test_migrate_rejects_unknown_targets(tmp_path: Path, target: Any) -> None:
    """A target that is not a known schema version raises FeedbackValidationError."""
    with pytest.raises(FeedbackValidationError) as info:
        await migrate(tmp_path / "x.db", target=target)
    assert info.value.field == "target"
    assert not (tmp_path / "x.db").exists()


def test_migrate_command_prints_the_schema_version(tmp_path: Path) -> None:
    """`python -m ai_feedback.stores.sqlite migrate URL` migrates and prints the version."""
    command = [sys.executable, "-m", "ai_feedback.stores.sqlite", "migrate"]
    first = subprocess.run(  # noqa: S603 - our own interpreter and module
        [*command, "sqlite:///cli.db", "--target", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert first.stdout == "schema version 1\n"
    second = subprocess.run(  # noqa: S603
        [*command, str(tmp_path / "cli.db")], capture_output=True, text=True, check=True
    )
    assert second.stdout == f"schema version {LATEST_VERSION}\n"
    assert [v for v, _, _ in _versions(tmp_path / "cli.db")] == list(range(1, LATEST_VERSION + 1))


def test_migrate_command_reports_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process, success prints the version; failure exits 1 with the reason on stderr."""
    assert sqlite_store.main(["migrate", str(tmp_path / "ok.db")]) == 0
    assert capsys.readouterr().out == f"schema version {LATEST_VERSION}\n"
    missing = tmp_path / "no-such-dir" / "x.db"
    assert sqlite_store.main(["migrate", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(missing) in captured.err
    assert captured.err.startswith("error: Cannot open SQLite database")


# ------------------------------------------------------------------------ failure paths


async def test_read_only_database_returns_err_from_writes(tmp_path: Path) -> None:
    """Writes to a database opened with mode=ro return Err(FeedbackStorageError); reads work."""
    path = tmp_path / "ro.db"
    kept = _item(session_id="s")
    async with await SQLiteFeedbackStore.open(path) as store:
        await store.save(kept)
    async with await SQLiteFeedbackStore.open(f"sqlite:///{path}?mode=ro") as store:
        for result in (await store.save(_item()), await store.save_many([_item(), _item()])):
            assert isinstance(result, Err)
            error = result.unwrap_err()
            assert isinstance(error, FeedbackStorageError)
            assert "readonly database" in str(error)
            assert "read-only" in str(error)
            assert str(path) in str(error)
            assert isinstance(error.__cause__, sqlite3.OperationalError)
        assert await store.find_by_session("s") == [kept]


async def test_read_only_database_cannot_be_migrated(tmp_path: Path) -> None:
    """Opening an unmigrated file with mode=ro raises a clear FeedbackStorageError."""
    path = tmp_path / "old.db"
    await migrate(path, target=1)
    with pytest.raises(FeedbackStorageError, match=r"Cannot migrate SQLite database .*readonly"):
        await SQLiteFeedbackStore.open(f"sqlite:///{path}?mode=ro")


async def test_locked_database_returns_err_then_recovers(tmp_path: Path) -> None:
    """While another connection holds the write lock, writes return Err; afterwards they work."""
    path = tmp_path / "locked.db"
    async with await SQLiteFeedbackStore.open(path, busy_timeout_ms=100) as store:
        first, second = _item(session_id="s"), _item(session_id="s", ago_s=1)
        with _connect(path) as other:
            other.execute("BEGIN IMMEDIATE")
            for result in (await store.save(first), await store.save_many([first, second])):
                assert isinstance(result, Err)
                message = str(result.unwrap_err())
                assert "database is locked" in message
                assert "busy_timeout_ms (now 100)" in message
            assert await store.find_by_session("s") == []  # readers are not blocked
            other.execute("ROLLBACK")
        assert await store.save(first) == Ok(first.id)
        assert await store.save_many([first, second]) == Ok([first.id, second.id])
        assert await store.find_by_session("s") == [first, second]


async def test_unopenable_path_raises_naming_the_path(tmp_path: Path) -> None:
    """A file in a directory that does not exist raises FeedbackStorageError naming it."""
    missing = tmp_path / "no-such-dir" / "feedback.db"
    with pytest.raises(FeedbackStorageError, match="unable to open database file") as info:
        await SQLiteFeedbackStore.open(f"sqlite:///{missing}")
    assert repr(str(missing)) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_file_that_is_not_a_database_raises(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises FeedbackStorageError naming the file."""
    path = tmp_path / "notes.txt"
    path.write_text("not a database " * 100)
    with pytest.raises(FeedbackStorageError, match="file is not a database") as info:
        await SQLiteFeedbackStore.open(path)
    assert str(path) in str(info.value)


async def test_failed_read_raises_storage_error(store: SQLiteFeedbackStore) -> None:
    """A read the database refuses raises FeedbackStorageError chained to the driver error."""
    with _connect(Path(store.path)) as other:
        other.execute("DROP TABLE raw_payload")
    with pytest.raises(
        FeedbackStorageError, match=r"Could not read feedback.*no such table"
    ) as info:
        await store.get_raw_payload("x")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    """After aclose, writes return Err, reads raise, and closing again is harmless."""
    store = await SQLiteFeedbackStore.open(tmp_path / "closed.db")
    assert "open>" in repr(store)
    await store.aclose()
    await store.aclose()
    assert "closed>" in repr(store)
    result = await store.save(_item())
    assert isinstance(result, Err)
    assert "is closed" in str(result.unwrap_err())
    with pytest.raises(FeedbackStorageError, match="is closed"):
        await store.get("x")


async def test_unclosed_store_warns(tmp_path: Path) -> None:
    """A store collected while open emits a ResourceWarning."""
    store = await SQLiteFeedbackStore.open(tmp_path / "leak.db")
    connection = store._db
    assert connection is not None
    try:
        with pytest.warns(ResourceWarning, match="was never closed"):
            del store  # reference counting collects it here
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.save("not an item"), "feedback"),
        (lambda s: s.save_many([_item(), 1]), "feedback"),
        (lambda s: s.get(""), "item_id"),
        (lambda s: s.get_raw_payload(None), "item_id"),
        (lambda s: s.find_by_type(FeedbackType.TEXT, limit=-3), "limit"),
        (lambda s: s.find_by_type("vote"), "feedback_type"),
        (lambda s: s.aggregate(window_hours=float("inf")), "window_hours"),
        (lambda s: s.stats(window_hours=0), "window_hours"),
        (lambda s: s.aggregate(provider=""), "provider"),
    ],
)
async def test_bad_arguments_raise_validation_errors(
    store: SQLiteFeedbackStore, call: Any, field: str
) -> None:
    """Invalid arguments raise FeedbackValidationError naming the argument."""
    with pytest.raises(FeedbackValidationError) as info:
        await call(store)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("target", "options", "field"),
    [
        ("sqlite://host/x.db", {}, "url"),
        ("sqlite:///", {}, "url"),
        ("sqlite:///x.db?journal=off", {}, "url"),
        ("x.db", {"busy_timeout_ms": -1}, "busy_timeout_ms"),
        ("x.db", {"busy_timeout_ms": 1.5}, "busy_timeout_ms"),
    ],
)
async def test_bad_open_arguments_raise_validation_errors(
    target: str, options: dict[str, Any], field: str
) -> None:
    """A malformed URL or option raises FeedbackValidationError before touching any file."""
    with pytest.raises(FeedbackValidationError) as info:
        await SQLiteFeedbackStore.open(target, **options)
    assert info.value.field == field
    assert not Path("x.db").exists()


async def test_url_forms(tmp_path: Path) -> None:
    """Relative and absolute sqlite:/// URLs, plain paths and :memory: all open a store."""
    item = _item()
    targets: list[tuple[str | Path, Path]] = [
        ("sqlite:///rel/relative.db", tmp_path / "rel" / "relative.db"),
        (f"sqlite:///{tmp_path}/absolute.db", tmp_path / "absolute.db"),
        (str(tmp_path / "plain.db"), tmp_path / "plain.db"),
        (tmp_path / "path object.db", tmp_path / "path object.db"),
    ]
    for target, expected in targets:
        expected.parent.mkdir(exist_ok=True)
        async with await SQLiteFeedbackStore.open(target) as store:
            assert store.path == str(expected)
            await store.save(item)
        assert expected.exists()
    async with await SQLiteFeedbackStore.open("sqlite:///:memory:") as store:
        assert store.path == ":memory:"
        assert await store.save(item) == Ok(item.id)
        assert await store.get(item.id) == item


# ------------------------------------------------------------------------- query plans


def _plan(path: Path, sql: str, params: tuple[Any, ...]) -> str:
    with _connect(path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(row[-1] for row in rows)


async def test_queries_use_their_indexes(store: SQLiteFeedbackStore) -> None:
    """Each query's plan searches its intended index; aggregates never read the table."""
    await store.save_many([_item(session_id="s", model="m", provider="p") for _ in range(20)])
    path = Path(store.path)
    since = 0
    session = _plan(path, FIND_BY_SESSION_SQL, ("s",))
    assert "SEARCH feedback USING INDEX feedback_session_created (session_id=?)" in session
    by_type = _plan(path, FIND_BY_TYPE_SQL, ("rating", 10))
    assert "SEARCH feedback USING INDEX feedback_type_created (feedback_type=?)" in by_type
    for queries in (AGGREGATE_SQL, STATS_SQL):
        by_model = _plan(path, queries[True, False, False, False], (since, "m"))
        assert "COVERING INDEX feedback_model_created (model=? AND created_at>?)" in by_model
        by_provider = _plan(path, queries[False, True, False, False], (since, "p"))
        assert "COVERING INDEX feedback_provider_created (provider=? AND" in by_provider
        both = _plan(path, queries[True, True, False, False], (since, "m", "p"))
        assert "COVERING INDEX feedback_model_created (model=? AND created_at>?)" in both or (
            "COVERING INDEX feedback_provider_created (provider=? AND created_at>?)" in both
        )
        everything = _plan(path, queries[False, False, False, False], (since,))
        assert "COVERING INDEX feedback_created (created_at>?)" in everything
    # What the store runs: the rollup by its key (bucket first), the first hour by index.
    for queries in (ROLLUP_AGGREGATE_SQL, ROLLUP_STATS_SQL):
        by_model = _plan(
            path,
            queries[True, False, False, False],
            (since, "m", since, "m", 1, since, since, "m"),
        )
        assert "SEARCH feedback_rollup USING PRIMARY KEY (bucket>?)" in by_model
        assert "SEARCH feedback_rollup USING PRIMARY KEY (bucket=? AND model=?)" in by_model
        assert (
            "COVERING INDEX feedback_model_created (model=? AND created_at>? AND created_at<?)"
            in by_model
        )
        everything = _plan(
            path, queries[False, False, False, False], (since, since, 1, since, since)
        )
        assert "COVERING INDEX feedback_created (created_at>? AND created_at<?)" in everything
        assert "SCAN feedback " not in everything + " "
