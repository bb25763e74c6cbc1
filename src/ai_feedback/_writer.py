"""
The background writer behind ``async_processing=True``: it drains a spool into the store.

Submitters append entries to a `Spool` (durable by default: on disk before the
submitter returns). One worker task takes batches in order (up to ``batch_size``,
waiting at most ``max_delay`` for one to fill), runs the pipeline on each entry, writes
the batch with the store's ``save_many`` (or one ``save`` per item), and only then
completes the batch in the spool. A failed write is retried with capped exponential
backoff for as long as it takes (or ``max_attempts``); stores are idempotent on the id,
so neither a retry nor a replay after a crash stores an item twice. Items the store
refuses as invalid or conflicting, and items the pipeline rejects, are set aside:
reported as `FeedbackFailed` (kept compactly in ``failures``, logged, published) and
kept in the spool's dead letters.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ai_feedback._models import Entry, FeedbackFilter, FeedbackItem, Spooled, WriterStatus
from ai_feedback.events import EventBus, FeedbackFailed, FeedbackProcessed, FeedbackStored
from ai_feedback.exceptions import (
    FeedbackConflictError,
    FeedbackError,
    FeedbackStorageError,
    FeedbackValidationError,
)
from ai_feedback.pipeline import Pipeline
from ai_feedback.protocols import (
    FeedbackStoreProtocol,
    Spool,
    SupportsDeletionLog,
    SupportsQuery,
    SupportsReplace,
)
from ai_feedback.result import Err
from ai_feedback.spool._base import FROM_WRITER

__all__ = ["BatchWriter", "WriterSettings", "write_items"]

_LOG = logging.getLogger("ai_feedback")
_CHAIN_DEPTH = 8  # chained errors whose tracebacks `compact` drops
_STOP_WAIT = 10.0  # seconds the shutdown waits for the cancelled worker
_UNEXPECTED_ATTEMPTS = 3  # attempts before a batch that raises oddly is split
_ITEMS_PER_TURN = 64  # items the writer processes before letting the event loop run
_RUNNING_BATCH: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "ai_feedback_running_batch", default=None
)
_FAIR_WAIT = 0.1  # seconds a non-durable submitter waits for the writer to finish a batch
# What a store raises while it is down or unreachable: retried as long as it lasts.
_OUTAGES = (FeedbackStorageError, OSError, TimeoutError)


CLOSED = "The feedback collector is closed; the application has shut down."
_UNKNOWN = object()  # a question the store could not answer during an outage


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, _OUTAGES) and not isinstance(error, FeedbackConflictError)


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """
    Tuning of the background writer (see `FeedbackConfig` for the meaning of each).
    """

    batch_size: int = 500
    max_delay: float = 0.05
    max_attempts: int | None = None
    backoff: float = 0.1
    backoff_max: float = 5.0
    failures_max: int = 10_000
    store_raw_payloads: bool = False
    shutdown_timeout: float = 20.0
    run_writer: bool = True
    read_wait: float = 5.0  # without a writer here: how long reads wait for other writers


async def write_items(
    store: FeedbackStoreProtocol,
    items: list[FeedbackItem],
    raw_payloads: Mapping[str, Any] | None,
    *,
    replace: bool = False,
) -> BaseException | None:
    """
    Write ``items`` once, in one batch when the store can; return the error or None.

    With ``replace`` (updates) a store that can (`SupportsReplace`) replaces the items
    under their ids; another writes them as new, so that a changed one is a conflict.
    """
    try:
        if replace and isinstance(store, SupportsReplace):
            return _error_of(await store.replace_many(items, raw_payloads=raw_payloads))
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


async def write_accepted(
    store: FeedbackStoreProtocol,
    items: list[FeedbackItem],
    raw_payloads: Mapping[str, Any] | None,
    accepted_at: list[float],
    *,
    replace: bool = False,
) -> tuple[BaseException | None, set[str]]:
    """
    Write accepted ``items`` once; return the error or None, and the ids withdrawn.

    A store with a deletion log leaves out (withdraws) the items a deletion made after
    their acceptance matches; other stores write them all. ``replace``: updates.
    """
    if not isinstance(store, SupportsDeletionLog):
        return await write_items(store, items, raw_payloads, replace=replace), set()
    try:
        result = await (
            store.save_accepted(items, accepted_at, raw_payloads=raw_payloads, replace=True)
            if replace
            else store.save_accepted(items, accepted_at, raw_payloads=raw_payloads)
        )
    except BaseException as exc:  # a store that raises is retried like an Err
        if _being_cancelled():
            raise
        return exc, set()
    error = _error_of(result)
    return error, set() if error is not None else set(result.unwrap())


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


def _report_end(worker: asyncio.Task[None]) -> None:
    if not worker.cancelled() and worker.exception() is not None:
        _LOG.error(
            "The feedback writer stopped; the next submission or flush restarts it",
            exc_info=worker.exception(),
        )


def compact(event: FeedbackFailed) -> FeedbackFailed:
    """
    Return ``event`` with its error's tracebacks dropped, so that keeping it is cheap.

    A traceback holds the frames of the writer, and through them a whole batch.
    """
    error: BaseException | None = event.error
    for _ in range(_CHAIN_DEPTH):
        if error is None:
            break
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
    return event


class BatchWriter:
    """
    Drain a spool into a store in one background task.

    Args:
        store: Where items are written.
        pipeline: Run on each entry before it is written.
        events: Where processed, stored and failed events go.
        spool: Where accepted entries wait.
        settings: Batching, retries, failures kept, shutdown deadline.
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol,
        pipeline: Pipeline,
        events: EventBus,
        spool: Spool,
        settings: WriterSettings,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._events = events
        self._spool = spool
        self._settings = settings
        self._worker: asyncio.Task[None] | None = None
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._putting = 0
        self._unyielded = 0
        self._unyielded_since = 0.0
        self._accepted = self._stored = self._failed = self._retries = self._batches = 0
        self._withdrawn = 0
        self._idle = asyncio.Event()  # set while the worker is not handling a batch
        self._idle.set()
        self._reachable: bool | None = None
        self._failing = asyncio.Event()  # set while the store's writes fail
        self._settled: set[int] = set()  # marks of this batch stored or kept aside
        self._batch: object | None = None  # the batch being handled (see _in_writer)
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self.failures: deque[FeedbackFailed] = deque(maxlen=settings.failures_max)

    def __repr__(self) -> str:
        return (
            f"<BatchWriter spool={self._spool.location!r} accepted={self._accepted} "
            f"stored={self._stored} failed={self._failed}>"
        )

    @property
    def spool(self) -> Spool:
        """
        The spool entries wait in.
        """
        return self._spool

    @property
    def counters(self) -> dict[str, int]:
        """
        Accepted, stored, failed, retried, withdrawn, batches and pending counts since start.
        """
        depth = getattr(self._spool, "depth", None)
        done = self._stored + self._withdrawn
        pending = depth if isinstance(depth, int) else self._accepted - done
        return {
            "accepted": self._accepted,
            "stored": self._stored,
            "failed": self._failed,
            "retries": self._retries,
            "withdrawn": self._withdrawn,
            "batches": self._batches,
            "pending": max(0, pending),
        }

    @property
    def is_closed(self) -> bool:
        """
        True once `aclose` was called; no more entries are accepted.
        """
        return self._closed

    async def start(self) -> None:
        """
        Open the spool and start the worker, which first replays what a crash left.
        """
        async with self._start_lock:
            if not self._started:
                await self._spool.start()
                self._started = True
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if not self._settings.run_writer:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name="ai_feedback-writer"
            )
            self._worker.add_done_callback(_report_end)

    def check_open(self) -> None:
        """
        Raise `FeedbackError` when the writer is closed (no entry would be accepted).
        """
        if self._closed:
            raise FeedbackError(CLOSED)

    async def put(self, entry: Entry) -> None:
        """
        Append ``entry`` to the spool; return once accepted (on disk when durable).

        Raises:
            FeedbackError: The writer is closed.
            FeedbackOverloadedError: The spool stayed full.
            FeedbackStorageError: The spool could not keep the entry.
        """
        self.check_open()
        self._putting += 1
        try:
            if not self._started or self._worker is None or self._worker.done():
                await self.start()
            in_writer = self._in_writer()
            if in_writer:
                await self._append_from_writer([entry])
            else:
                await self._spool.append(entry)
        finally:
            self._putting -= 1
        self._accepted += 1
        if not in_writer:  # a step or subscriber submitting: it cannot wait for itself
            await self._let_writer_run()

    async def put_many(self, entries: list[Entry]) -> None:
        """
        Append ``entries`` to the spool in one go (one commit for a durable spool).

        Raises:
            FeedbackError: The writer is closed.
            FeedbackOverloadedError: The spool stayed too full for them.
            FeedbackStorageError: The spool could not keep them.
        """
        if not entries:
            return
        self.check_open()
        self._putting += 1
        try:
            if not self._started or self._worker is None or self._worker.done():
                await self.start()
            in_writer = self._in_writer()
            if in_writer:
                await self._append_from_writer(entries)
            else:
                await self._spool.append_many(entries)
        finally:
            self._putting -= 1
        self._accepted += len(entries)
        if not in_writer:
            await self._let_writer_run()

    def _in_writer(self) -> bool:
        """
        Whether the caller runs in this writer, for its current batch.

        Its own task, or a task a step or subscriber started while handling the batch
        being handled now (a task that outlives its batch is an ordinary caller).
        """
        if asyncio.current_task() is self._worker:
            return True
        batch = _RUNNING_BATCH.get()
        return batch is not None and batch is self._batch

    async def _append_from_writer(self, entries: list[Entry]) -> None:
        # A step or subscriber submitting: waiting for room only the writer can make
        # would stall it, so the spool takes these beyond its capacity.
        token = FROM_WRITER.set(True)
        try:
            await self._spool.append_many(entries)
        finally:
            FROM_WRITER.reset(token)

    async def _let_writer_run(self) -> None:
        # A submitter in a tight loop over a spool that never suspends (the in-memory
        # one) would never let the worker run: yield once a batch is ready or has waited
        # its delay, so that the time from acknowledgement to stored stays bounded.
        now = time.monotonic()
        if self._unyielded == 0:
            self._unyielded_since = now
        self._unyielded += 1
        if (
            self._unyielded >= self._settings.batch_size
            or now - self._unyielded_since >= self._settings.max_delay
        ):
            self._unyielded = 0
            await asyncio.sleep(0)
            if not self._idle.is_set() and not self._spool.durable:
                # The writer yields inside big batches too: let it finish this one, or a
                # submitter that never waits would only ever give it a step at a time.
                # Not through an outage, though: then the spool's room is the limit.
                await self._until_idle_or_failing()

    async def _until_idle_or_failing(self) -> None:
        if self._failing.is_set():
            return
        idle = asyncio.ensure_future(self._idle.wait())
        failing = asyncio.ensure_future(self._failing.wait())
        try:
            # Bounded: a store that hangs (no error yet) must not hold the submitters.
            await asyncio.wait(
                {idle, failing}, timeout=_FAIR_WAIT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (idle, failing):
                waiter.cancel()

    async def flush(self, *, through_outage: bool = True) -> bool:
        """
        Wait until every entry accepted before this call is stored or set aside.

        With ``through_outage=False`` (what reads use) it also returns as soon as the
        store is failing: a read during an outage then fails (or reads what is there)
        instead of waiting for the outage to end. A process that does not write itself
        (``run_writer`` off) cannot see the writers' outage, so it waits at most
        ``read_wait`` seconds. Returns whether every entry accepted before the call is
        done (False: the store failed, or the writers were not done, first).
        """
        if not self._started:
            return True
        if self._in_writer():
            # Called by a subscriber or step running in the writer itself: waiting for the
            # writer would wait forever, so reads (and deletions) there go ahead with what
            # is stored so far.
            return True
        mark = self._spool.last_mark
        self._ensure_worker()
        await self._spool.hurry(mark)
        if through_outage:
            await self._spool.wait_done(mark)
            return True
        done = asyncio.ensure_future(self._spool.wait_done(mark))
        failing = asyncio.ensure_future(self._failing.wait())
        try:
            await asyncio.wait(
                {done, failing},
                timeout=None if self._settings.run_writer else self._settings.read_wait,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in (done, failing):
                waiter.cancel()
        return done.done() and not done.cancelled()

    async def aclose(self, deadline: float | None = None) -> None:
        """
        Stop accepting entries, drain within ``deadline`` seconds, stop the worker.

        What is not stored by then stays in a durable spool for the next start (and is
        lost with the in-memory one); either way it is logged.
        """
        self._closed = True
        async with self._start_lock:  # a start in progress (for a submitter) finishes first
            if not self._started:
                return
        if deadline is None:
            deadline = self._settings.shutdown_timeout
        if self._settings.run_writer:
            try:
                async with asyncio.timeout(deadline):
                    # Submitters that were waiting for room before the close still get
                    # their entries in; drain until none is left waiting.
                    while True:
                        busy = self._putting or getattr(self._spool, "arriving", 0)
                        await self.flush()
                        if not busy:  # nothing was being appended when flush began
                            break
                        await asyncio.sleep(0.001)
            except TimeoutError:
                await self._report_leftovers(deadline)
        if self._worker is not None:
            self._worker.cancel()
            _, running = await asyncio.wait({self._worker}, timeout=_STOP_WAIT)
            if running:
                _LOG.error("The feedback writer did not stop within %gs", _STOP_WAIT)
            self._worker = None
        await self._spool.aclose()
        self._started = False

    async def _report_leftovers(self, deadline: float) -> None:
        try:
            depth = (await self._spool.status()).depth
        except FeedbackError:
            depth = -1
        if self._spool.durable:
            _LOG.warning(
                "Shutdown deadline (%gs) reached with %s item(s) not yet stored; they stay "
                "in the spool %s and are written at the next start",
                deadline,
                depth if depth >= 0 else "some",
                self._spool.location,
                extra={"items": depth, "spool": self._spool.location},
            )
        else:
            _LOG.error(
                "Shutdown deadline (%gs) reached with %d accepted item(s) not stored; "
                "with ack 'queued' they are lost",
                deadline,
                depth,
                extra={"items": depth},
            )

    async def status(self) -> WriterStatus:
        """
        Spool depth and age, whether the store answers, retries and counts.
        """
        spool = await self._spool.status() if self._started else None
        since = self._failing_since
        return WriterStatus(
            mode="durable" if self._spool.durable else "queued",
            spool=spool,
            store_reachable=self._reachable,
            failing_for_seconds=None if since is None else time.monotonic() - since,
            last_error=self._last_error,
            accepted=self._accepted,
            stored=self._stored,
            failed=self._failed,
            retries=self._retries,
            withdrawn=self._withdrawn,
        )

    async def _run(self) -> None:
        settings = self._settings
        while True:
            if _being_cancelled():  # a cancellation a library swallowed
                raise asyncio.CancelledError
            try:
                batch = await self._spool.take(settings.batch_size, settings.max_delay)
            except Exception:  # noqa: BLE001 - the spool failed to read; nothing is lost
                _LOG.exception("Taking a batch from the spool %s failed", self._spool.location)
                await asyncio.sleep(settings.backoff_max)
                continue
            await self._process(batch)
            await self._spool.complete(batch)
            self._batches += 1
            # With a backlog and a store that never suspends, nothing above yields: let the
            # rest of the event loop run between batches.
            await asyncio.sleep(0)

    async def _process(self, batch: list[Spooled]) -> None:
        """
        Store or set aside every entry of ``batch``, however long it takes.

        A batch is never given up: when handling it fails unexpectedly (the spool cannot
        keep a dead letter, a bug), it is handled again after a backoff.
        """
        self._idle.clear()
        # Tasks a step or subscriber starts while this batch is handled count as the
        # writer (they may submit and read without waiting for it); once it is done,
        # one that lives on is an ordinary caller again.
        self._batch = token = object()
        _RUNNING_BATCH.set(token)
        try:
            await self._handle_until_done(batch)
        finally:
            self._settled.clear()
            self._batch = None
            self._idle.set()

    async def _handle_until_done(self, batch: list[Spooled]) -> None:
        delay = self._settings.backoff
        every: float | None = getattr(self._spool, "hold_every", None)
        while True:
            keeper = None
            if every:  # keep the batch reserved in a shared spool while it is written
                keeper = asyncio.create_task(self._keep_reserved(batch, every))
            try:
                await self._handle(batch)
            except Exception:  # noqa: BLE001 - logged; the batch is handled again
                _LOG.exception(
                    "The feedback writer failed on a batch of %d; handling it again in %.2fs",
                    len(batch),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.backoff_max)
                continue
            finally:
                if keeper is not None:
                    keeper.cancel()
            return

    async def _keep_reserved(self, batch: list[Spooled], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self._spool.hold(batch)

    async def _handle(self, batch: list[Spooled]) -> None:
        ready: list[tuple[Spooled, FeedbackItem]] = []
        for index, spooled in enumerate(batch):
            if index and not index % _ITEMS_PER_TURN:
                await asyncio.sleep(0)  # a big batch must not hold the event loop for long
            if spooled.mark in self._settled:
                continue  # stored or kept aside before the batch had to be handled again
            entry = spooled.entry
            try:
                item = await self._pipeline.run(entry.item, entry.processor)
            except FeedbackError as exc:  # rejected, failed, or over a limit after the steps
                await self._fail(spooled, "processing", exc, 0)
                continue
            if self._events.has_subscribers(FeedbackProcessed):
                await self._events.publish(FeedbackProcessed(item, entry.processor))
            ready.append((spooled, item))
        # New items first, then updates (an update of an item of the same batch follows it).
        for replace in (False, True):
            pairs = [pair for pair in ready if pair[0].entry.replace is replace]
            if pairs:
                await self._write(pairs)

    async def _write(self, pairs: list[tuple[Spooled, FeedbackItem]]) -> None:
        """
        Write ``pairs`` until each is stored or set aside.

        Store outages (`FeedbackStorageError`, `OSError`, timeouts) are retried with
        capped backoff for as long as they last (or ``max_attempts``). An item the store
        refuses (invalid, a conflict), or a batch that keeps failing with another
        exception (a bug in a store), is written one item at a time so that only the
        items at fault are set aside.
        """
        delay = self._settings.backoff
        attempts = 0
        # A new batch's first attempt tells again whether the store fails: reads wait for
        # it (an earlier batch given up after max_attempts says nothing about this one).
        self._failing.clear()
        while pairs:
            error, gone = await write_accepted(
                self._store,
                [i for _, i in pairs],
                self._raws(pairs),
                [spooled.entry.accepted_at for spooled, _ in pairs],
                replace=pairs[0][0].entry.replace,
            )
            if error is None:
                self._answered()
                await self._stored_items(self._withdraw(pairs, gone))
                return
            if isinstance(error, FeedbackConflictError):
                self._answered()
                pairs = await self._resolve_conflicts(pairs, error)
                continue
            refused = isinstance(error, FeedbackValidationError)
            if refused or (not _is_outage(error) and attempts + 1 >= _UNEXPECTED_ATTEMPTS):
                if not refused:
                    _LOG.error("The store keeps raising %r; writing items one by one", error)
                await self._one_by_one(pairs, error, attempts + 1)
                return
            attempts += 1
            self._unreachable(error)
            limit = self._settings.max_attempts
            if limit is not None and attempts >= limit:
                _LOG.error(
                    "Giving up on %d feedback item(s) after %d attempt(s): %r",
                    len(pairs),
                    attempts,
                    error,
                    extra={"items": len(pairs), "attempts": attempts},
                )
                for spooled, item in pairs:
                    await self._fail(spooled, "storage", error, attempts, item)
                return
            self._retries += 1
            _LOG.warning(
                "Storing %d feedback item(s) failed (attempt %d), retrying in %.2fs: %r",
                len(pairs),
                attempts,
                delay,
                error,
                extra={"items": len(pairs), "attempt": attempts},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max)

    def _raws(self, pairs: list[tuple[Spooled, FeedbackItem]]) -> dict[str, Any] | None:
        if not self._settings.store_raw_payloads:
            return None
        return {item.id: spooled.entry.raw_payload for spooled, item in pairs}

    def _withdraw(
        self, pairs: list[tuple[Spooled, FeedbackItem]], gone: set[str]
    ) -> list[tuple[Spooled, FeedbackItem]]:
        """
        Settle the pairs the store withdrew (a later deletion matches them); return the rest.
        """
        if not gone:
            return pairs
        withdrawn = [pair for pair in pairs if pair[1].id in gone]
        self._settled.update(spooled.mark for spooled, _ in withdrawn)
        self._withdrawn += len(withdrawn)
        ids = sorted({item.id for _, item in withdrawn})
        _LOG.info(
            "%d feedback item(s) accepted before a deletion that matches them were not stored: %s",
            len(withdrawn),
            ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else ""),  # noqa: PLR2004
            extra={"items": len(withdrawn), "item_ids": ids[:100]},
        )
        return [pair for pair in pairs if pair[1].id not in gone]

    async def _stored_items(self, pairs: list[tuple[Spooled, FeedbackItem]]) -> None:
        self._settled.update(spooled.mark for spooled, _ in pairs)
        self._stored += len(pairs)
        if self._events.has_subscribers(FeedbackStored):
            for _, item in pairs:
                await self._events.publish(FeedbackStored(item))

    async def _one_by_one(
        self, pairs: list[tuple[Spooled, FeedbackItem]], error: BaseException, attempts: int
    ) -> None:
        if len(pairs) == 1:
            await self._fail(pairs[0][0], "storage", error, attempts, pairs[0][1])
            return
        for pair in pairs:  # alone, each item is stored, retried, or set aside on its own
            await self._write([pair])

    async def _resolve_conflicts(
        self, pairs: list[tuple[Spooled, FeedbackItem]], error: FeedbackConflictError
    ) -> list[tuple[Spooled, FeedbackItem]]:
        """
        Write the items under the conflicting ids one at a time; return the others.

        Alone, each either is stored (the same item sent again, or the first of two
        under one id), or conflicts with what is stored: then it is set aside, unless the
        spool says it may have been stored already (a replay) and the stored item is
        this one as a step may have changed it (same time, type and owner), in which case what
        is stored stands.
        """
        conflicting = set(error.ids)
        rest = [pair for pair in pairs if pair[1].id not in conflicting]
        suspects = [pair for pair in pairs if pair[1].id in conflicting]
        if not suspects:  # the store named none of these ids: set them all aside
            for spooled, item in pairs:
                await self._fail(spooled, "storage", error, 0, item)
            return []
        for spooled, item in suspects:
            alone, gone = await write_accepted(
                self._store,
                [item],
                self._raws([(spooled, item)]),
                [spooled.entry.accepted_at],
                replace=spooled.entry.replace,
            )
            if alone is None:
                await self._stored_items(self._withdraw([(spooled, item)], gone))
            elif isinstance(alone, FeedbackConflictError) and spooled.replayed:
                ours = await self._stored_before(item)
                if ours is _UNKNOWN:
                    rest.append((spooled, item))  # the store failed meanwhile: retried
                elif ours:
                    _LOG.info(
                        "Feedback %s was stored before a restart or redelivery; the stored "
                        "version stands (a step may have changed it)",
                        item.id,
                        extra={"item_id": item.id},
                    )
                else:
                    await self._fail(spooled, "storage", alone, 1, item)
            elif isinstance(alone, FeedbackConflictError | FeedbackValidationError):
                await self._fail(spooled, "storage", alone, 1, item)
            else:
                rest.append((spooled, item))  # an outage meanwhile: retried with the rest
        return rest

    async def _stored_before(self, item: FeedbackItem) -> bool | object:
        """
        Whether the item stored under ``item``'s id is ``item`` from before a restart.

        Steps may change an item on its way (a time stamp, a looked-up field), so a
        replayed item can differ from the version stored before the restart: the stored
        one is taken as this one when its time, type and owner are the same. A store that
        cannot be queried is taken at its word; `_UNKNOWN` when the store failed.
        """
        if not isinstance(self._store, SupportsQuery):
            return True
        try:
            found = await self._store.query(FeedbackFilter(item_id=item.id), limit=1)
        except _OUTAGES:
            return _UNKNOWN
        mine = (item.created_at, item.feedback_type, item.context.get("owner_id"))
        return any(
            (stored.created_at, stored.feedback_type, stored.context.get("owner_id")) == mine
            for stored in found
        )

    def _answered(self) -> None:
        self._reachable = True
        self._failing_since = None
        self._failing.clear()

    def _unreachable(self, error: BaseException) -> None:
        self._reachable = False
        self._failing.set()
        self._last_error = repr(error)[:500]
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    async def _fail(
        self,
        spooled: Spooled,
        stage: str,
        error: BaseException,
        attempts: int,
        item: FeedbackItem | None = None,
    ) -> None:
        if spooled.mark in self._settled:
            return  # kept aside already, before the batch had to be handled again
        event = FeedbackFailed(item or spooled.entry.item, stage, error, attempts)
        _LOG.warning(
            "Feedback %s was not stored (%s): %s",
            event.item.id,
            stage,
            error,
            extra={"item_id": event.item.id, "stage": stage},
        )
        # Raises when the spool cannot keep it: the batch is then handled again, since an
        # item neither stored nor kept aside would be lost.
        await self._spool.dead_letter(spooled, stage, error, attempts)
        self._settled.add(spooled.mark)
        self._failed += 1
        await self._events.publish(event)
        self.failures.append(compact(event))
