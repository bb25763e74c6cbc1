"""
The seams of ai-feedback: what application code depends on, and what a store implements.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ai_feedback._models import (
    Cursor,
    Deleted,
    Entry,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
    Spooled,
    SpoolStatus,
)
from ai_feedback.result import Result

__all__ = [
    "FeedbackProtocol",
    "FeedbackStoreProtocol",
    "Spool",
    "SupportsDelete",
    "SupportsDeletionLog",
    "SupportsQuery",
    "SupportsReplace",
    "SupportsScan",
    "SupportsSeries",
    "SupportsStats",
]


@runtime_checkable
class FeedbackProtocol(Protocol):
    """
    **Protocol:** what a service depends on to record and read feedback.

    `FeedbackCollector` implements it.
    """

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Record a rating of the output identified by ``trace_id``.
        """
        ...

    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """
        Return statistics (at least ``total_count``, ``average_rating``, ``by_type``).
        """
        ...


@runtime_checkable
class FeedbackStoreProtocol(Protocol):
    """
    **Protocol:** where feedback items are kept.

    ``save`` is idempotent on the item id and returns expected failures as ``Err``;
    ``find_*`` return newest first; ``aggregate`` counts items created inside the window.
    """

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Store ``feedback``; return ``Ok(id)``, also when the id is already stored.
        """
        ...

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items whose ``context["session_id"]`` is ``session_id``, newest first.
        """
        ...

    async def find_by_type(
        self,
        feedback_type: FeedbackType,
        *,
        limit: int = 100,
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.
        """
        ...

    async def aggregate(
        self,
        *,
        window_hours: int = 24,
    ) -> FeedbackSummary:
        """
        Summarize the items created in the last ``window_hours``.
        """
        ...


@runtime_checkable
class SupportsStats(Protocol):
    """
    **Protocol:** a store that computes filtered statistics itself.

    Every built-in store implements it; `FeedbackCollector` needs it to filter
    ``get_feedback_stats`` by model or provider.
    """

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
        Return statistics for the window, filtered by model, provider, owner and type.
        """
        ...


@runtime_checkable
class SupportsSeries(Protocol):
    """
    **Protocol:** a store that counts a window's items per whole hour or day.

    Every built-in store implements it; the dashboard's time series needs it. The
    points' counts add up to the ``total_count`` that ``stats`` returns for the same
    window and filters.
    """

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
        Return the window's non-empty buckets, oldest first, filtered like ``stats``.
        """
        ...


@runtime_checkable
class SupportsQuery(Protocol):
    """
    **Protocol:** a store that lists items by filter, newest first, a page at a time.

    Every built-in store implements it; the HTTP service's listings need it.
    """

    async def query(
        self,
        where: FeedbackFilter | None = None,
        *,
        limit: int = 100,
        before: Cursor | None = None,
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items matching ``where``, newest first, after ``before``.
        """
        ...


@runtime_checkable
class SupportsScan(Protocol):
    """
    **Protocol:** a store that streams every item matching a filter in constant memory.

    Every built-in store implements it (keyset pages over ``query``); export reads this way.
    """

    def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield every item matching ``where``, newest first (``created_at``, then ``id``).
        """
        ...


@runtime_checkable
class SupportsDelete(Protocol):
    """
    **Protocol:** a store that deletes the items matching a filter.

    Every built-in store implements it; deletion by id, trace, session or owner and
    retention need it.
    """

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Remove the items matching ``where`` (and their raw payloads).

        ``where`` must set a field; ``limit`` removes at most that many, the oldest first.
        """
        ...


@runtime_checkable
class SupportsDeletionLog(Protocol):
    """
    **Protocol:** a store that logs its deletions and checks writes against the log.

    With several processes on one database, a deletion in one process cannot wait for
    what another process accepted and has not written yet (its spool during an outage).
    The SQL stores log every deletion made without a ``limit`` (its filter and time);
    the writer hands each item over with the time it was accepted, and an item that a
    logged deletion made at or after that time matches is not stored. Deletions and
    such writes take turns, so none slips between the check and the write.
    """

    async def save_accepted(
        self,
        items: Sequence[FeedbackItem],
        accepted_at: Sequence[float],
        *,
        raw_payloads: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Result[list[str], Exception]:
        """
        Store ``items`` like ``save_many``, except those a later logged deletion matches.

        ``accepted_at[i]`` is when ``items[i]`` was accepted (seconds since the epoch);
        with ``replace`` the items replace those stored under their ids
        (`SupportsReplace`). Returns ``Ok`` with the ids left out (withdrawn), or the
        error.
        """
        ...


@runtime_checkable
class SupportsReplace(Protocol):
    """
    **Protocol:** a store that updates items: a new version replaces the one under its id.

    Every built-in store implements it. A replacement keeps the statistics exact (the old
    version leaves them, the new one enters) and replaces the raw payload; it never takes
    an id stored under another owner (``context.owner_id``): that is a conflict.
    """

    async def replace_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Store each item, replacing the one stored under its id; return the ids.

        An id given twice keeps its last item. ``Err(FeedbackConflictError)`` when an id
        is stored under another owner; then nothing is stored.
        """
        ...


@runtime_checkable
class Spool(Protocol):
    """
    **Protocol:** where accepted items wait for the writer (append here, drain there).

    Submitters `append`; the writer `take`s batches in order, stores them, and then
    `complete`s them (or `dead_letter`s the ones the store refuses). A durable spool has
    an appended entry on disk when `append` returns, and keeps every entry that was not
    completed across crashes and restarts, so the writer replays it; stores are
    idempotent on ids, so a replay never stores an item twice.

    Marks are increasing numbers that `append` returns; `wait_done(mark)` waits until
    every entry up to that mark is completed, by whichever process drains the spool.
    """

    @property
    def durable(self) -> bool:
        """
        True when an appended entry survives a crash of this process.
        """
        ...

    @property
    def location(self) -> str:
        """
        Where the entries are kept, for messages and status (a path or a URL).
        """
        ...

    @property
    def last_mark(self) -> int:
        """
        The mark of the newest entry this process appended (0 before the first).
        """
        ...

    async def start(self) -> None:
        """
        Open the spool and find what an earlier run left, ready to be replayed.
        """
        ...

    async def append(self, entry: Entry) -> int:
        """
        Add ``entry``; return its mark (waits while full, then `FeedbackOverloadedError`).
        """
        ...

    async def append_many(self, entries: Sequence[Entry]) -> list[int]:
        """
        Add ``entries`` together (one commit); return their marks.
        """
        ...

    async def take(self, limit: int, max_delay: float) -> list[Spooled]:
        """
        Return the next entries in order (1 to ``limit``), reserved for the caller.

        Waits for a first entry, then up to ``max_delay`` seconds for ``limit`` of them.
        """
        ...

    async def hold(self, batch: Sequence[Spooled]) -> None:
        """
        Tell the spool the writer still works on ``batch`` (a store outage is long).
        """
        ...

    async def complete(self, batch: Sequence[Spooled]) -> None:
        """
        Forget ``batch``: it is stored, or dead-lettered.
        """
        ...

    async def dead_letter(
        self, spooled: Spooled, stage: str, error: BaseException, attempts: int
    ) -> None:
        """
        Keep ``spooled`` aside with the reason the store or the pipeline refused it.
        """
        ...

    async def hurry(self, mark: int) -> None:
        """
        Stop waiting for batches to fill until every entry up to ``mark`` is taken.
        """
        ...

    async def wait_done(self, mark: int) -> None:
        """
        Wait until every entry up to ``mark`` is completed.
        """
        ...

    async def status(self) -> SpoolStatus:
        """
        Depth, age of the oldest entry, capacity and dead letters.
        """
        ...

    async def aclose(self) -> None:
        """
        Release the spool; entries not completed stay in a durable spool.
        """
        ...
