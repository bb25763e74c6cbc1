"""
What the local spools share: entry encoding and the bookkeeping of marks.

A local spool numbers its entries with increasing marks. ``ready`` is the newest mark
the writer may take (appended, and durable when the spool is), ``taken`` the newest
handed to the writer, ``done`` the newest completed. Batches are taken and completed in
order by one writer, so everything up to ``done`` is completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ai_feedback._models import Entry, FeedbackType, Spooled, trusted_item
from ai_feedback.exceptions import FeedbackOverloadedError, FeedbackStorageError

__all__ = ["FROM_WRITER", "SequencedSpool", "decode_entry", "encode_entry"]

FROM_WRITER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ai_feedback_from_writer", default=False
)
"""True while the writer itself appends (a step or subscriber submitting): such an
append must not wait for room, which only the writer can make."""

_LOG = logging.getLogger("ai_feedback")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TYPE_OF = {t.value: t for t in FeedbackType}


def encode_entry(entry: Entry) -> bytes:
    """
    Return ``entry`` as compact JSON bytes (`decode_entry` reverses it exactly).
    """
    item = entry.item
    doc: dict[str, Any] = {
        "i": item.id,
        "t": item.feedback_type.value,
        "v": item.value,
        "c": item.context,
        "m": item.metadata,
        "a": (item.created_at - _EPOCH) // _MICROSECOND,
        "p": entry.processor,
        "q": entry.accepted_at,
    }
    if entry.raw_payload is not None:
        doc["r"] = entry.raw_payload
    if entry.replace:
        doc["u"] = True
    return orjson.dumps(doc)


def decode_entry(data: bytes | memoryview) -> tuple[Entry, float]:
    """
    Return the entry encoded in ``data`` and the time it was accepted.

    The item was validated before it was spooled, so it is rebuilt without validating it
    again.

    Raises:
        ValueError: ``data`` is not an encoded entry (a damaged spool).
    """
    try:
        doc = orjson.loads(data)
        item = trusted_item(
            _TYPE_OF[doc["t"]],
            doc["v"],
            doc["c"],
            doc["m"],
            doc["i"],
            _EPOCH + _MICROSECOND * doc["a"],
        )
        accepted = float(doc["q"])
        return Entry(item, doc["p"], doc.get("r"), accepted, doc.get("u") is True), accepted
    except (orjson.JSONDecodeError, KeyError, TypeError, OverflowError) as exc:
        msg = f"not a spooled entry: {exc!r}"
        raise ValueError(msg) from exc


class SequencedSpool:
    """
    Marks, batch waiting, back-pressure and completion for spools kept by this process.

    Subclasses store the entries: they call `_appended` once entries are ready to take,
    and implement `_read` (the next entries after ``taken``) and `_forget`.

    Args:
        capacity: Most entries not yet completed before `append` waits (the writer's own
            appends, `FROM_WRITER`, go beyond it rather than wait for themselves).
        full_wait: Seconds `append` waits for room before raising.
        what: Names the spool in the overload error (``"queue"``, ``"spool at ..."``).
    """

    def __init__(self, *, capacity: int, full_wait: float, what: str) -> None:
        self._capacity = capacity
        self._full_wait = full_wait
        self._what = what
        self._ready = 0
        self._taken = 0
        self._done = 0
        self._reserved = 0  # marks handed out, ready or not
        self._depth = 0  # entries appended (or replayed) and not completed
        self._hurry = 0
        self._last_mark = 0
        self._closed = False
        # The last mark of each batch in flight -> how far `take` went for it (entries
        # set aside while reading lie between batches), so that completing the batch
        # completes those too.
        self._bounds: dict[int, int] = {}
        self._changed = asyncio.Condition()

    @property
    def last_mark(self) -> int:
        """
        The mark of the newest entry this process appended.
        """
        return self._last_mark

    @property
    def depth(self) -> int:
        """
        Entries appended (or replayed) and not yet completed.
        """
        return self._depth

    @property
    def capacity(self) -> int:
        """
        Most entries held before submitters get back-pressure.
        """
        return self._capacity

    def _arriving(self) -> int:
        """
        Entries appended but not yet counted in the depth (a commit in progress).
        """
        return 0

    @property
    def arriving(self) -> int:
        """
        Entries being committed: accepted into the spool once the commit ends.
        """
        return self._arriving()

    def _has_room(self, more: int = 0) -> bool:
        return self._depth + self._arriving() + more < self._capacity

    async def _wait_for_room(self, more: int = 0) -> None:
        """
        Wait until ``1 + more`` entries fit.
        """
        if self._has_room(more) or FROM_WRITER.get():
            return
        try:
            async with asyncio.timeout(self._full_wait), self._changed:
                await self._changed.wait_for(lambda: self._has_room(more))
        except TimeoutError:
            raise FeedbackOverloadedError(
                self._what, capacity=self._capacity, retry_after=max(1.0, self._full_wait)
            ) from None

    def _next_mark(self) -> int:
        self._reserved += 1
        return self._reserved

    async def _appended(self, upto: int, count: int) -> None:
        """
        Make every mark up to ``upto`` available to `take`; ``count`` entries arrived.
        """
        async with self._changed:
            self._ready = max(self._ready, upto)
            # A submitter cancelled while its entry was committed never got its mark, but
            # the entry is in the spool: a flush (and the drain at shutdown) covers it too.
            self._last_mark = max(self._last_mark, upto)
            self._depth += count
            self._changed.notify_all()

    async def _read(self, limit: int) -> list[Spooled]:
        raise NotImplementedError

    async def _forget(self, batch: Sequence[Spooled]) -> None:
        raise NotImplementedError

    async def take(self, limit: int, max_delay: float) -> list[Spooled]:
        """
        Wait for an entry, then up to ``max_delay`` for ``limit``; return the next ones.
        """
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._ready > self._taken)
                if max_delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max_delay):
                            await self._changed.wait_for(
                                lambda: (
                                    self._ready - self._taken >= limit or self._hurry > self._taken
                                )
                            )
            batch = await self._read(limit)
            if batch:
                self._bounds[batch[-1].mark] = self._taken
                return batch
            if not self._bounds:  # all set aside, nothing in flight: they are done
                async with self._changed:
                    self._done = max(self._done, self._taken)
                    self._changed.notify_all()

    async def hold(self, batch: Sequence[Spooled]) -> None:
        """
        Nothing to do: entries of a local spool stay reserved until completed.
        """

    async def complete(self, batch: Sequence[Spooled]) -> None:
        """
        Forget ``batch`` (stored or dead-lettered) and wake whoever waits for it.
        """
        if not batch:
            return
        try:
            await self._forget(batch)
        except Exception:  # noqa: BLE001 - the batch is stored: a replay changes nothing
            _LOG.warning("Could not remove a stored batch from %s", self._what, exc_info=True)
        async with self._changed:
            bound = self._bounds.pop(batch[-1].mark, batch[-1].mark)
            self._done = max(self._done, bound)
            self._depth -= len(batch)
            self._changed.notify_all()

    async def hurry(self, mark: int) -> None:
        """
        Take batches without waiting for them to fill until ``mark`` is taken.
        """
        async with self._changed:
            self._hurry = max(self._hurry, mark)
            self._changed.notify_all()

    async def wait_done(self, mark: int) -> None:
        """
        Wait until every entry up to ``mark`` is completed.

        Raises:
            FeedbackStorageError: The spool was closed first.
        """
        async with self._changed:
            await self._changed.wait_for(lambda: self._done >= mark or self._closed)
        if self._done < mark:
            msg = f"The {self._what} was closed before the entries were stored."
            raise FeedbackStorageError(msg)

    async def _mark_closed(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
