"""The spool contract (append, take, complete, replay), run against every spool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import FeedbackFilter, FeedbackItem, FeedbackOverloadedError, FeedbackType, Spool
from ai_feedback._models import Entry
from ai_feedback.spool.jetstream import JetStreamSpool
from ai_feedback.spool.memory import MemorySpool
from ai_feedback.spool.sqlite import SQLiteSpool
from tests.spool.nats_server import fresh_stream, spool_url

IDENTITY = "sqlite:///tmp/store.db"

Opener = Callable[..., Spool]


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("nats", marks=pytest.mark.nats),
    ]
)
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """A function opening a spool of one kind; every call opens the same location again."""
    opened: list[Spool] = []

    def make(kind: str, location: str) -> Opener:
        def open_spool(**options: Any) -> Spool:
            spool: Spool
            if kind == "memory":
                spool = MemorySpool(**options)
            elif kind == "sqlite":
                spool = SQLiteSpool(location, identity=IDENTITY, **options)
            else:
                spool = JetStreamSpool(location, identity=IDENTITY, **options)
            opened.append(spool)
            return spool

        return open_spool

    if request.param == "nats":
        async with fresh_stream() as name:
            yield make("nats", spool_url(name, ack_wait=2))
            for spool in opened:
                await spool.aclose()
        return
    yield make(request.param, str(tmp_path / "test.spool"))
    for spool in opened:
        await spool.aclose()


def _entry(value: int = 4, **context: Any) -> Entry:
    item = FeedbackItem(feedback_type=FeedbackType.RATING, value=value, context=context)
    return Entry(item, "rating", {"score": value})


def _id(entry: Entry) -> str:
    return entry.item.id


async def _take_all(spool: Spool, n: int) -> list[Any]:
    taken: list[Any] = []
    while len(taken) < n:
        taken += await asyncio.wait_for(spool.take(n - len(taken), 0), 10)
    return taken


async def test_entries_come_out_in_order_and_unchanged(opener: Opener) -> None:
    """take() returns what was appended, in order, items and raw payloads intact."""
    spool = opener()
    await spool.start()
    entries = [_entry(i % 5 + 1, session_id=f"s{i}") for i in range(20)]
    marks = [await spool.append(entry) for entry in entries]
    assert marks == sorted(marks)
    assert spool.last_mark == marks[-1]
    taken = await _take_all(spool, 20)
    assert [t.entry for t in taken] == entries
    assert [t.mark for t in taken] == marks
    assert [t.entry.raw_payload for t in taken] == [e.raw_payload for e in entries]
    await spool.complete(taken)
    await asyncio.wait_for(spool.wait_done(marks[-1]), 10)
    assert (await spool.status()).depth == 0


async def test_take_waits_for_a_batch_to_fill_then_gives_what_there_is(opener: Opener) -> None:
    """With a delay, take returns a full batch at once, or a partial one after the delay."""
    spool = opener()
    await spool.start()
    for _ in range(3):
        await spool.append(_entry())
    loop = asyncio.get_running_loop()
    started = loop.time()
    partial = await spool.take(10, 0.2)
    waited = loop.time() - started
    assert len(partial) == 3
    assert waited >= 0.15
    await spool.complete(partial)
    for _ in range(5):
        await spool.append(_entry())
    full = await asyncio.wait_for(spool.take(5, 30), 10)
    assert len(full) == 5
    await spool.complete(full)


async def test_hurry_skips_the_wait(opener: Opener) -> None:
    """After hurry(mark), take returns without waiting for the batch to fill."""
    spool = opener()
    await spool.start()
    mark = await spool.append(_entry())
    await spool.hurry(mark)
    batch = await asyncio.wait_for(spool.take(100, 30), 5)
    assert [s.mark for s in batch] == [mark]
    await spool.complete(batch)


async def test_wait_done_waits_for_completion(opener: Opener) -> None:
    """wait_done(mark) returns only once everything up to mark is completed."""
    spool = opener()
    await spool.start()
    first = await spool.append(_entry())
    second = await spool.append(_entry())
    waiter = asyncio.create_task(spool.wait_done(second))
    batch = await _take_all(spool, 1)
    await spool.complete(batch)
    await asyncio.sleep(0.1)
    assert batch[0].mark == first
    assert not waiter.done()
    rest = await _take_all(spool, 1)
    await spool.complete(rest)
    await asyncio.wait_for(waiter, 10)


async def test_a_full_spool_gives_back_pressure(opener: Opener) -> None:
    """A full spool makes append wait, then raise FeedbackOverloadedError; room lets it in."""
    spool = opener(capacity=2, full_wait=0.3)
    await spool.start()
    await spool.append(_entry())
    await spool.append(_entry())
    with pytest.raises(FeedbackOverloadedError) as info:
        await spool.append(_entry())
    assert info.value.retry_after >= 0.3
    assert info.value.capacity == 2
    waiting = asyncio.create_task(spool.append(_entry(value=5)))
    batch = await _take_all(spool, 2)
    await spool.complete(batch)
    mark = await asyncio.wait_for(waiting, 10)
    [last] = await _take_all(spool, 1)
    assert (last.mark, last.entry.item.value) == (mark, 5)
    await spool.complete([last])


async def test_status_reports_depth_age_and_capacity(opener: Opener) -> None:
    """status() shows what waits, how old the oldest is, and the capacity."""
    spool = opener(capacity=50)
    await spool.start()
    empty = await spool.status()
    assert (empty.depth, empty.oldest_age_seconds, empty.capacity) == (0, None, 50)
    await spool.append(_entry())
    await spool.append(_entry())
    await asyncio.sleep(0.05)
    status = await spool.status()
    assert status.depth == 2
    assert status.oldest_age_seconds is not None
    assert status.oldest_age_seconds >= 0.04
    assert status.durable is spool.durable
    assert status.to_dict()["depth"] == 2


async def test_what_was_not_completed_is_replayed_after_a_restart(opener: Opener) -> None:
    """A durable spool hands back, after a restart, every entry not completed.

    The local spool replays them in order; JetStream delivers the one that was taken
    again once its ack_wait expires, after the others.
    """
    spool = opener()
    if not spool.durable:
        pytest.skip("the in-memory spool keeps nothing across restarts, by design")
    await spool.start()
    entries = [_entry(i + 1) for i in range(5)]
    for entry in entries:
        await spool.append(entry)
    done = await _take_all(spool, 2)
    await spool.complete(done)
    await _take_all(spool, 1)  # taken, never completed: a crash mid-batch
    await spool.aclose()

    again = opener()
    await again.start()
    assert (await again.status()).depth == 3
    replayed = await _take_all(again, 3)
    assert sorted((s.entry for s in replayed), key=_id) == sorted(entries[2:], key=_id)
    if isinstance(again, SQLiteSpool):
        assert [s.entry for s in replayed] == entries[2:]
    await again.complete(replayed)


async def test_dead_letters_are_counted(opener: Opener) -> None:
    """An entry set aside as a dead letter is counted in the status."""
    spool = opener()
    await spool.start()
    await spool.append(_entry())
    [spooled] = await _take_all(spool, 1)
    await spool.dead_letter(spooled, "storage", ValueError("refused"), 1)
    await spool.complete([spooled])
    for _ in range(100):
        if (await spool.status()).dead_letters == int(spool.durable):
            break
        await asyncio.sleep(0.05)
    assert (await spool.status()).dead_letters == int(spool.durable)
    assert (await spool.status()).depth == 0


async def test_append_many_adds_entries_together(opener: Opener) -> None:
    """append_many returns increasing marks and the entries come out in order."""
    spool = opener()
    await spool.start()
    entries = [_entry(i % 5 + 1) for i in range(7)]
    marks = await spool.append_many(entries)
    assert marks == sorted(marks)
    assert len(set(marks)) == 7
    assert [s.entry for s in await _take_all(spool, 7)] == entries
    assert await spool.append_many([]) == []


async def test_append_many_respects_the_capacity(opener: Opener) -> None:
    """A batch that cannot fit gets FeedbackOverloadedError.

    A local spool appends none of it; JetStream stores the messages that fit, one by one.
    """
    spool = opener(capacity=3, full_wait=0.2)
    await spool.start()
    with pytest.raises(FeedbackOverloadedError):
        await spool.append_many([_entry() for _ in range(5)])
    if not isinstance(spool, JetStreamSpool):
        assert (await spool.status()).depth == 0


async def test_dead_letters_of_deleted_items_are_removed(opener: Opener) -> None:
    """delete_dead_letters(where) removes only the matching set-aside items (durable spools)."""
    spool = opener()
    await spool.start()
    entries = [_entry(session_id="gone"), _entry(session_id="kept"), _entry(session_id="gone")]
    await spool.append_many(entries)
    taken = await _take_all(spool, 3)
    for spooled in taken:
        await spool.dead_letter(spooled, "storage", ValueError("refused"), 1)
    await spool.complete(taken)
    purge = getattr(spool, "delete_dead_letters", None)
    if not spool.durable:
        assert purge is None  # nothing is kept, nothing to delete
        return
    assert purge is not None
    for _ in range(100):
        if (await spool.status()).dead_letters == 3:
            break
        await asyncio.sleep(0.05)
    assert await purge(FeedbackFilter(session_id="kept")) == 1  # leaves a gap in the middle
    assert await purge(FeedbackFilter(session_id="gone")) == 2  # found past the gap
    assert await purge(FeedbackFilter(session_id="gone")) == 0
    assert (await spool.status()).dead_letters == 0
