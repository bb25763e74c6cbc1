"""
The in-memory spool behind ``ack: queued``: fast, bounded, and lost if the process dies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from time import monotonic

from ai_feedback._models import Entry, Spooled, SpoolStatus
from ai_feedback.spool._base import SequencedSpool

__all__ = ["MemorySpool"]


class MemorySpool(SequencedSpool):
    """
    A bounded queue in this process's memory.

    `append` returns once the entry is queued; whatever is not stored when the process
    ends (a crash, or a shutdown that ran out of time) is lost.

    Args:
        capacity: Most entries waiting or in flight before submitters wait.
        full_wait: Seconds a submitter waits for room before `FeedbackOverloadedError`.
    """

    def __init__(self, *, capacity: int = 10_000, full_wait: float = 5.0) -> None:
        super().__init__(capacity=capacity, full_wait=full_wait, what="in-memory queue")
        self._queue: deque[tuple[Spooled, float]] = deque()

    def __repr__(self) -> str:
        return f"<MemorySpool depth={self._depth} capacity={self._capacity}>"

    @property
    def durable(self) -> bool:
        """
        False: entries live in this process only.
        """
        return False

    @property
    def location(self) -> str:
        """
        ``memory``.
        """
        return "memory"

    async def start(self) -> None:
        """
        Nothing to open or replay.
        """

    async def append(self, entry: Entry) -> int:
        """
        Queue ``entry``; wait while the queue is full.

        Raises:
            FeedbackOverloadedError: Still full after ``full_wait`` seconds.
        """
        await self._wait_for_room()
        mark = self._next_mark()
        self._queue.append((Spooled(mark, entry), monotonic()))
        self._last_mark = mark
        await self._appended(mark, 1)
        return mark

    async def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """
        Queue ``entries``, waiting for room for all of them.

        Raises:
            FeedbackOverloadedError: Still no room after ``full_wait`` seconds.
        """
        await self._wait_for_room(len(entries) - 1)
        now = monotonic()
        marks = []
        for entry in entries:
            mark = self._next_mark()
            self._queue.append((Spooled(mark, entry), now))
            marks.append(mark)
        if marks:
            self._last_mark = marks[-1]
            await self._appended(marks[-1], len(marks))
        return marks

    async def _read(self, limit: int) -> list[Spooled]:
        queue = self._queue
        batch = [queue.popleft()[0] for _ in range(min(limit, len(queue)))]
        if batch:
            self._taken = batch[-1].mark
        return batch

    async def _forget(self, batch: Sequence[Spooled]) -> None:
        del batch  # nothing kept once taken

    async def dead_letter(
        self, spooled: Spooled, stage: str, error: BaseException, attempts: int
    ) -> None:
        """
        Nothing to keep: the writer's ``failures`` list is the record.
        """

    async def status(self) -> SpoolStatus:
        """
        Depth and the age of the oldest queued entry.
        """
        oldest = self._queue[0][1] if self._queue else None
        return SpoolStatus(
            kind="memory",
            location="memory",
            durable=False,
            depth=self._depth,
            oldest_age_seconds=None if oldest is None else max(0.0, monotonic() - oldest),
            capacity=self._capacity,
        )

    async def aclose(self) -> None:
        """
        Drop what is left (the writer drains first and reports what it could not).
        """
        self._queue.clear()
        await self._mark_closed()
