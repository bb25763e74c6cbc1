"""The SQLite spool: group commit, one file per process, orphans, identity, damage."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from ai_feedback import FeedbackConfigurationError, FeedbackItem, FeedbackStorageError, FeedbackType
from ai_feedback._models import Entry
from ai_feedback.spool.sqlite import SQLiteSpool

STORE = "sqlite:////data/feedback.db"


def _entry(value: int = 4) -> Entry:
    return Entry(FeedbackItem(feedback_type=FeedbackType.RATING, value=value), "rating")


async def _drain(spool: SQLiteSpool) -> list[Entry]:
    taken: list[Entry] = []
    while spool.depth:
        batch = await asyncio.wait_for(spool.take(1000, 0), 5)
        taken += [s.entry for s in batch]
        await spool.complete(batch)
    return taken


async def test_concurrent_submitters_share_commits(tmp_path: Path) -> None:
    """64 concurrent appends are committed in far fewer transactions (group commit)."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    commits: list[int] = []
    insert = spool._insert

    def counting(db: Any, rows: list[Any]) -> None:
        commits.append(len(rows))
        insert(db, rows)

    spool._insert = counting  # type: ignore[method-assign]
    await asyncio.gather(*(spool.append(_entry()) for _ in range(64)))
    assert sum(commits) == 64
    assert len(commits) < 8
    await spool.aclose()


async def test_each_process_gets_its_own_file(tmp_path: Path) -> None:
    """A second spool on a taken path uses <path>.1; the first file stays the first's."""
    first = SQLiteSpool(tmp_path / "s", identity=STORE)
    second = SQLiteSpool(tmp_path / "s", identity=STORE)
    await first.start()
    await second.start()
    assert first.location == str(tmp_path / "s")
    assert second.location == str(tmp_path / "s.1")
    await first.aclose()
    await second.aclose()


async def test_orphaned_files_are_adopted_at_start(tmp_path: Path) -> None:
    """Entries left in a file no process holds are moved into the next spool that starts."""
    first = SQLiteSpool(tmp_path / "s", identity=STORE)
    second = SQLiteSpool(tmp_path / "s", identity=STORE)
    await first.start()
    await second.start()
    mine = [_entry(1), _entry(2)]
    orphaned = [_entry(3), _entry(4), _entry(5)]
    for entry in mine:
        await first.append(entry)
    for entry in orphaned:
        await second.append(entry)
    await first.aclose()
    await second.aclose()  # s.1 is now an orphan with 3 entries

    third = SQLiteSpool(tmp_path / "s", identity=STORE)
    await third.start()
    assert third.location == str(tmp_path / "s")
    assert third.depth == 5
    assert await _drain(third) == mine + orphaned
    await third.aclose()
    with sqlite3.connect(tmp_path / "s.1") as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (0,)


async def test_a_file_held_by_a_live_process_is_not_adopted(tmp_path: Path) -> None:
    """A locked sibling file is left alone: its process drains it itself."""
    other = SQLiteSpool(tmp_path / "s.1", identity=STORE)
    await other.start()
    await other.append(_entry())
    lock = FileLock(f"{tmp_path / 's.1'}.lock", timeout=0)
    await other.aclose()
    lock.acquire()  # another live process holds s.1
    try:
        spool = SQLiteSpool(tmp_path / "s", identity=STORE)
        await spool.start()
        assert spool.depth == 0
        await spool.aclose()
    finally:
        lock.release()


async def test_a_file_feeding_another_store_is_refused(tmp_path: Path) -> None:
    """A spool holding items for another store is refused, naming both; an empty one is reused."""
    spool = SQLiteSpool(tmp_path / "s", identity="sqlite:////a.db")
    await spool.start()
    await spool.append(_entry())
    await spool.aclose()
    wrong = SQLiteSpool(tmp_path / "s", identity="sqlite:////b.db")
    with pytest.raises(FeedbackConfigurationError) as info:
        await wrong.start()
    assert info.value.key == "spool_url"
    assert "sqlite:////a.db" in str(info.value)
    assert "sqlite:////b.db" in str(info.value)
    again = SQLiteSpool(tmp_path / "s", identity="sqlite:////a.db")
    await again.start()
    await _drain(again)
    await again.aclose()
    reused = SQLiteSpool(tmp_path / "s", identity="sqlite:////b.db")
    await reused.start()
    await reused.aclose()


async def test_a_damaged_entry_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry that cannot be read is moved to the dead letters; the others go through."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    good = [_entry(1), _entry(2)]
    for entry in good:
        await spool.append(entry)
    await spool.aclose()
    with sqlite3.connect(tmp_path / "s") as db:
        db.execute(
            "UPDATE entries SET entry = x'7b6e6f' WHERE seq = (SELECT min(seq) FROM entries)"
        )
    again = SQLiteSpool(tmp_path / "s", identity=STORE)
    await again.start()
    assert await _drain(again) == good[1:]
    [letter] = await again.dead_letters()
    assert (letter.stage, letter.item) == ("spool", None)
    assert "cannot be read" in caplog.text
    await again.aclose()


async def test_dead_letters_keep_the_item_and_the_reason(tmp_path: Path) -> None:
    """dead_letter() keeps the item and why it was refused, readable with dead_letters()."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    entry = _entry(3)
    await spool.append(entry)
    [spooled] = await spool.take(1, 0)
    await spool.dead_letter(spooled, "storage", ValueError("conflict"), 2)
    await spool.complete([spooled])
    [letter] = await spool.dead_letters()
    assert letter.item == entry.item
    assert (letter.stage, letter.attempts) == ("storage", 2)
    assert "conflict" in letter.error
    await spool.aclose()


async def test_a_failed_commit_is_an_error_for_its_submitters_only(tmp_path: Path) -> None:
    """A failed commit is a FeedbackStorageError for its submitters; later ones succeed."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    insert = spool._insert
    failures = [1]

    def failing(db: Any, rows: list[Any]) -> None:
        if failures:
            failures.pop()
            msg = "disk I/O error"
            raise sqlite3.OperationalError(msg)
        insert(db, rows)

    spool._insert = failing  # type: ignore[method-assign]
    with pytest.raises(FeedbackStorageError, match="disk I/O error"):
        await spool.append(_entry(1))
    kept = _entry(2)
    await spool.append(kept)
    assert await _drain(spool) == [kept]
    await spool.aclose()


async def test_entries_past_the_memory_bound_are_read_from_the_file(tmp_path: Path) -> None:
    """With more entries than memory_items, the rest come from disk, in order."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE, memory_items=3)
    await spool.start()
    entries = [_entry(i % 5 + 1) for i in range(10)]
    for entry in entries:
        await spool.append(entry)
    assert await _drain(spool) == entries
    await spool.aclose()


async def test_an_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    """A spool path inside a file (not a directory) cannot be opened: a clear error."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spool = SQLiteSpool(blocker / "s", identity=STORE)
    with pytest.raises(FeedbackStorageError, match="Could not open the spool"):
        await spool.start()


async def test_completed_entries_are_deleted(tmp_path: Path) -> None:
    """Completed entries leave the file (with the next commit, or on their own)."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    for i in range(5):
        await spool.append(_entry(i + 1))
    await _drain(spool)
    await spool.aclose()
    with sqlite3.connect(tmp_path / "s") as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (0,)


async def test_batches_completed_out_of_order_delete_only_themselves(tmp_path: Path) -> None:
    """Completing batches 1 and 3 before 2 leaves batch 2 in the file."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    for i in range(6):
        await spool.append(_entry(i % 5 + 1))
    first, second, third = [await spool.take(2, 0) for _ in range(3)]
    await spool.complete(first)
    await spool.complete(third)
    await spool.aclose()
    with sqlite3.connect(tmp_path / "s") as db:
        left = [row[0] for row in db.execute("SELECT seq FROM entries ORDER BY seq")]
    assert left == [s.mark for s in second]


async def test_a_damaged_last_entry_does_not_hold_up_a_flush(tmp_path: Path) -> None:
    """When the newest entry of a replayed file cannot be read, waiting for it still ends."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    good = [_entry(1), _entry(2)]
    for entry in [*good, _entry(3)]:
        await spool.append(entry)
    await spool.aclose()
    with sqlite3.connect(tmp_path / "s") as db:
        db.execute("UPDATE entries SET entry = x'00' WHERE seq = (SELECT max(seq) FROM entries)")
    again = SQLiteSpool(tmp_path / "s", identity=STORE)
    await again.start()
    batch = await again.take(10, 0)
    assert [s.entry for s in batch] == good
    assert all(s.replayed for s in batch)
    await again.complete(batch)
    await asyncio.wait_for(again.wait_done(again.last_mark), 5)
    await again.aclose()


async def test_concurrent_first_appends_share_one_file(tmp_path: Path) -> None:
    """Appends racing to start the spool open it once (one file, one lock)."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await asyncio.gather(*(spool.append(_entry()) for _ in range(10)))
    assert spool.location == str(tmp_path / "s")
    assert not (tmp_path / "s.1").exists()
    await spool.aclose()


async def test_waiting_on_a_closed_spool_is_an_error(tmp_path: Path) -> None:
    """wait_done() does not hang once the spool is closed; it says the entries wait still."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    mark = await spool.append(_entry())
    waiter = asyncio.create_task(spool.wait_done(mark))
    await asyncio.sleep(0.01)
    await spool.aclose()
    with pytest.raises(FeedbackStorageError, match="closed before"):
        await asyncio.wait_for(waiter, 5)


async def test_an_entry_arriving_during_a_failed_delete_is_still_committed(tmp_path: Path) -> None:
    """A delete-only commit that fails (file locked, disk full) hands on to what arrived."""
    spool = SQLiteSpool(tmp_path / "s", identity=STORE)
    await spool.start()
    write = spool._write
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def locked(rows: list[Any], forget: list[Any]) -> None:
        if not rows and forget and not started.is_set():
            loop.call_soon_threadsafe(started.set)
            time.sleep(0.2)  # the busy timeout, shortened
            msg = "database is locked"
            raise sqlite3.OperationalError(msg)
        write(rows, forget)

    spool._write = locked  # type: ignore[method-assign]
    await spool.append(_entry(1))
    await spool.complete(await spool.take(10, 0))  # the delete-only commit that fails
    await asyncio.wait_for(started.wait(), 5)
    arriving = _entry(2)
    await asyncio.wait_for(spool.append(arriving), 5)
    assert await _drain(spool) == [arriving]
    await spool.aclose()
