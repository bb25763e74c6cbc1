"""
The background writer behind ``async_processing=True``.

Accepted entries wait in a bounded queue (a full queue makes submitters wait: nothing is
dropped). One worker task takes up to ``batch_size`` entries, waiting at most
``max_delay`` for a batch to fill, runs the pipeline on each, and writes the batch with
the store's ``save_many`` (or one ``save`` per item when the store has none). A failed
write is retried with exponential backoff; stores are idempotent on the item id, so a
retry never stores an item twice. After ``max_attempts`` the batch's items are reported
as `FeedbackFailed` (kept in ``failures``, logged, published), never silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ai_feedback._models import FeedbackItem
from ai_feedback.events import EventBus, FeedbackFailed, FeedbackProcessed, FeedbackStored
from ai_feedback.exceptions import FeedbackError, FeedbackStorageError, FeedbackValidationError
from ai_feedback.pipeline import Pipeline
from ai_feedback.protocols import FeedbackStoreProtocol
from ai_feedback.result import Err

__all__ = ["BatchWriter", "Entry", "WriterSettings", "write_items"]

_LOG = logging.getLogger("ai_feedback")


@dataclass(frozen=True, slots=True)
class Entry:
    """
    One accepted submission: the item, its processor key and its raw payload.
    """

    item: FeedbackItem
    processor: str
    raw_payload: Any = None


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """
    Tuning of the background writer (see `FeedbackConfig` for the meaning of each).
    """

    queue_size: int = 10_000
    batch_size: int = 500
    max_delay: float = 0.05
    max_attempts: int = 5
    backoff: float = 0.1
    backoff_max: float = 5.0
    failures_max: int = 10_000
    store_raw_payloads: bool = False


@dataclass(slots=True)
class _Counters:
    accepted: int = 0
    completed: int = 0
    stored: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0
    extra: dict[str, int] = field(default_factory=dict)


async def write_items(
    store: FeedbackStoreProtocol,
    items: list[FeedbackItem],
    raw_payloads: Mapping[str, Any] | None,
) -> BaseException | None:
    """
    Write ``items`` once, in one batch when the store can; return the error or None.
    """
    try:
        save_many = getattr(store, "save_many", None)
        if save_many is not None:
            result = await (
                save_many(items, raw_payloads=raw_payloads) if raw_payloads else save_many(items)
            )
            return _error_of(result)
        for item in items:
            error = _error_of(await store.save(item))
            if error is not None:
                return error
    except BaseException as exc:  # a store that raises is retried like an Err
        if _being_cancelled():
            raise
        return exc
    return None


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _error_of(result: object) -> BaseException | None:
    if isinstance(result, Err):
        error = result.error
        if isinstance(error, BaseException):
            return error
        return FeedbackStorageError(f"The store returned Err({error!r})")
    return None


class BatchWriter:
    """
    Queue, batch, process and store entries in one background task.
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol,
        pipeline: Pipeline,
        events: EventBus,
        settings: WriterSettings,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._events = events
        self._settings = settings
        self._queue: asyncio.Queue[Entry] = asyncio.Queue(maxsize=settings.queue_size)
        self._batch_ready = asyncio.Event()
        self._progress = asyncio.Condition()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._flush_target = 0
        self._putting = 0
        self._notifiers: set[asyncio.Task[None]] = set()
        self._counters = _Counters()
        self.failures: deque[FeedbackFailed] = deque(maxlen=settings.failures_max)

    def __repr__(self) -> str:
        c = self._counters
        return f"<BatchWriter queued={self._queue.qsize()} stored={c.stored} failed={c.failed}>"

    @property
    def counters(self) -> dict[str, int]:
        """
        Accepted, stored, failed, retried and pending counts since start.
        """
        c = self._counters
        return {
            "accepted": c.accepted,
            "stored": c.stored,
            "failed": c.failed,
            "retries": c.retries,
            "batches": c.batches,
            "pending": c.accepted - c.completed,
        }

    @property
    def is_closed(self) -> bool:
        """
        True once `aclose` was called; no more entries are accepted.
        """
        return self._closed

    async def put(self, entry: Entry) -> None:
        """
        Queue ``entry``, waiting while the queue is full.

        Raises:
            FeedbackError: The writer is closed.
        """
        if self._closed:
            msg = "The feedback collector is closed; the application has shut down."
            raise FeedbackError(msg)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name="ai_feedback-writer"
            )
        self._putting += 1
        try:
            await self._queue.put(entry)
        finally:
            self._putting -= 1
        self._counters.accepted += 1
        if self._queue.qsize() >= self._settings.batch_size:
            self._batch_ready.set()

    async def flush(self) -> None:
        """
        Wait until every entry accepted before this call is stored or reported failed.
        """
        target = self._counters.accepted
        if self._counters.completed >= target:
            return
        if asyncio.current_task() is self._worker:
            # Called by a subscriber or step running in the writer itself: waiting for the
            # writer would wait forever, so reads there see what is stored so far.
            return
        self._flush_target = max(self._flush_target, target)
        self._batch_ready.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self._counters.completed >= target)

    async def aclose(self) -> None:
        """
        Stop accepting entries, drain the queue and stop the worker.
        """
        self._closed = True
        # Submitters that were waiting for room before the close still get their entries
        # in; keep draining until none is left waiting and everything accepted is done.
        while self._putting or not self._queue.empty() or self._pending():
            await self.flush()
            await asyncio.sleep(0)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._wait_for_batch()
            batch = [first]
            while len(batch) < self._settings.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle(batch)
            except BaseException as exc:  # the worker must survive anything but its own cancel
                if _being_cancelled():
                    raise
                _LOG.exception("Feedback writer failed on a batch of %d", len(batch))
                for entry in batch:
                    await self._fail(entry.item, "storage", exc, 0)
            finally:
                self._counters.completed += len(batch)
                self._counters.batches += 1
                self._progress_made()
            # With a backlog and a store that never suspends, nothing above yields: let the
            # rest of the event loop run between batches.
            await asyncio.sleep(0)

    def _pending(self) -> int:
        return self._counters.accepted - self._counters.completed

    def _progress_made(self) -> None:
        # Wake flush() callers without awaiting, so that this also runs while cancelled.
        async def notify() -> None:
            async with self._progress:
                self._progress.notify_all()

        task = asyncio.get_running_loop().create_task(notify())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    async def _wait_for_batch(self) -> None:
        # No await between the checks and the wait: a put() or flush() cannot slip between.
        self._batch_ready.clear()
        if (
            self._queue.qsize() + 1 >= self._settings.batch_size
            or self._settings.max_delay <= 0
            or self._flush_target > self._counters.completed
        ):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._batch_ready.wait(), self._settings.max_delay)

    async def _handle(self, batch: list[Entry]) -> None:
        ready: list[FeedbackItem] = []
        raws: dict[str, Any] = {}
        for entry in batch:
            try:
                item = await self._pipeline.run(entry.item, entry.processor)
            except FeedbackError as exc:  # rejected, failed, or over a limit after the steps
                await self._fail(entry.item, "processing", exc, 0)
                continue
            await self._events.publish(FeedbackProcessed(item, entry.processor))
            ready.append(item)
            if self._settings.store_raw_payloads:
                raws[item.id] = entry.raw_payload
        if ready:
            await self._write(ready, raws or None)

    async def _write(self, items: list[FeedbackItem], raws: dict[str, Any] | None) -> None:
        delay = self._settings.backoff
        attempt = 0
        while True:
            attempt += 1
            error = await write_items(self._store, items, raws)
            if error is None:
                self._counters.stored += len(items)
                for item in items:
                    await self._events.publish(FeedbackStored(item))
                return
            permanent = isinstance(error, FeedbackValidationError)
            if permanent and len(items) > 1:
                # One bad item must not sink the batch: write them one by one.
                for item in items:
                    one = None if raws is None else {item.id: raws.get(item.id)}
                    await self._write([item], one)
                return
            if permanent or attempt >= self._settings.max_attempts:
                _LOG.error(
                    "Giving up on %d feedback item(s) after %d attempt(s): %r",
                    len(items),
                    attempt,
                    error,
                    extra={"items": len(items), "attempts": attempt},
                )
                for item in items:
                    await self._fail(item, "storage", error, attempt)
                return
            self._counters.retries += 1
            _LOG.warning(
                "Storing %d feedback item(s) failed (attempt %d of %d), retrying in %.2fs: %r",
                len(items),
                attempt,
                self._settings.max_attempts,
                delay,
                error,
                extra={"items": len(items), "attempt": attempt},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max)

    async def _fail(
        self, item: FeedbackItem, stage: str, error: BaseException, attempts: int
    ) -> None:
        event = FeedbackFailed(item, stage, error, attempts)
        self._counters.failed += 1
        self.failures.append(event)
        if stage == "processing":
            _LOG.warning(
                "Feedback %s was not stored: %s",
                item.id,
                error,
                extra={"item_id": item.id, "stage": stage},
            )
        await self._events.publish(event)
