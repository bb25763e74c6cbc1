"""
`FeedbackCollector`: the implementation of `FeedbackProtocol`.

Every entry point validates its arguments in the caller's task and raises
`FeedbackValidationError` naming the argument; nothing is stored when it does. An
accepted item then goes through the pipeline (processor, steps) and into the store:
in the caller's task when ``async_processing`` is off, in the background writer when it
is on (see `ai_feedback._writer`), after the item was appended to a spool that is
durable by default (see `ai_feedback.spool`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ai_feedback._models import (
    DeletionReceipt,
    Entry,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackType,
    WriterStatus,
    check_payload_limits,
    check_timestamp,
    checked_item,
    coerce_type,
    copy_item,
)
from ai_feedback._validation import (
    check_id,
    check_item_id,
    check_normalized_length,
    check_optional_id,
    check_payload_size,
    check_score,
    check_text,
    json_copy,
)
from ai_feedback._writer import CLOSED, BatchWriter, WriterSettings, write_items
from ai_feedback.capture import CaptureStore, FeedbackContext
from ai_feedback.config import FeedbackConfig
from ai_feedback.events import (
    EventBus,
    FeedbackFailed,
    FeedbackProcessed,
    FeedbackStored,
    FeedbackSubmitted,
)
from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackConflictError,
    FeedbackError,
    FeedbackStorageError,
    FeedbackValidationError,
)
from ai_feedback.pipeline import Pipeline
from ai_feedback.protocols import FeedbackStoreProtocol, SupportsDelete, SupportsStats
from ai_feedback.retention import Retention
from ai_feedback.spool import open_spool, report_leftovers
from ai_feedback.stores._common import check_deletion, same_item, store_location

__all__ = ["FeedbackCollector"]

# The fields submit_payload accepts for each type, besides "type".
_COMMON_FIELDS = ("context", "metadata", "processor", "id", "created_at")
_PAYLOAD_FIELDS = {
    FeedbackType.RATING: ("score", "trace_id", "comment", *_COMMON_FIELDS),
    FeedbackType.TEXT: ("text", *_COMMON_FIELDS),
    FeedbackType.CORRECTION: ("original", "corrected", *_COMMON_FIELDS),
    FeedbackType.LABEL: ("label", "input", *_COMMON_FIELDS),
}

_LOG = logging.getLogger("ai_feedback")
# Metadata keys that submit_feedback copies into the item's indexed context.
_CONTEXT_FROM_METADATA = ("model", "provider", "session_id", "owner_id")


class FeedbackCollector:
    """
    Records feedback through the pipeline into a store and reads statistics back.

    Args:
        store: Where items are written.
        config: Switches, limits, the statistics window and the writer's tuning;
            defaults to ``FeedbackConfig()``.
        pipeline: Processors and steps; a new one with the built-in processors by default.
            A pipeline made without ``limits`` takes ``config``'s.
        events: Where submitted/processed/stored/failed events go.
        captures: Captured operations joined to feedback by ``trace_id``.

    With ``enabled=False`` every call still validates its input, then nothing is stored
    and no event is published; ``collect_*`` return the id the item would have had.

    With ``async_processing`` on, the spool is opened (and what an earlier run left in
    it is replayed) by `start`, or on first use; `FeedbackModule` starts it at boot, once
    every module is set up.

    Raises:
        FeedbackValidationError: ``store`` is not a store.
        FeedbackConfigurationError: ``store_raw_payloads`` is on but the store cannot
            keep raw payloads, or the spool needs a package that is not installed.
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol,
        config: FeedbackConfig | None = None,
        *,
        pipeline: Pipeline | None = None,
        events: EventBus | None = None,
        captures: CaptureStore | None = None,
    ) -> None:
        if not isinstance(store, FeedbackStoreProtocol):
            raise FeedbackValidationError("store", "must implement FeedbackStoreProtocol", store)
        self._store = store
        self._config = config = config if config is not None else FeedbackConfig()
        self._limits = config.limits
        if config.store_raw_payloads and not hasattr(store, "get_raw_payload"):
            msg = f"is on but {type(store).__name__} cannot keep raw payloads"
            raise FeedbackConfigurationError("store_raw_payloads", msg)
        self.pipeline = pipeline if pipeline is not None else Pipeline()
        self.pipeline.adopt_limits(self._limits)
        self.events = events if events is not None else EventBus()
        self.captures = (
            captures
            if captures is not None
            else CaptureStore(
                max_entries=config.capture_max_entries,
                max_age_seconds=config.capture_max_age_seconds,
                max_chars=config.capture_max_chars,
            )
        )
        self._writer: BatchWriter | None = None
        if config.async_processing:
            self._writer = BatchWriter(
                store,
                self.pipeline,
                self.events,
                open_spool(config, store),
                WriterSettings(
                    batch_size=config.batch_size,
                    max_delay=config.batch_max_delay_ms / 1000,
                    max_attempts=config.max_attempts,
                    backoff=config.retry_backoff_ms / 1000,
                    backoff_max=config.retry_backoff_max_ms / 1000,
                    failures_max=config.failures_max,
                    store_raw_payloads=config.store_raw_payloads,
                    shutdown_timeout=config.shutdown_timeout_seconds,
                    run_writer=config.run_writer,
                    read_wait=config.backpressure_wait_ms / 1000,
                ),
            )
        self._sync_failures: deque[FeedbackFailed] = deque(maxlen=config.failures_max)
        self._reported_leftovers = False
        self._closed = False  # after aclose: refused without async processing too
        self.retention: Retention | None = None
        if config.retention_days is not None:
            if not isinstance(store, SupportsDelete):
                msg = f"is set but {type(store).__name__} cannot delete items"
                raise FeedbackConfigurationError("retention_days", msg)
            self.retention = Retention(
                store,
                days=config.retention_days,
                interval=config.retention_interval_seconds,
                batch_size=config.retention_batch_size,
            )

    def __repr__(self) -> str:
        mode = "sync" if self._writer is None else "durable" if self.is_durable else "queued"
        return f"<FeedbackCollector store={self._store!r} enabled={self._config.enabled} {mode}>"

    @property
    def store(self) -> FeedbackStoreProtocol:
        """
        The store items are written to.
        """
        return self._store

    @property
    def config(self) -> FeedbackConfig:
        """
        The effective configuration.
        """
        return self._config

    @property
    def is_durable(self) -> bool:
        """
        True when an accepted item is on disk before the submission returns.

        That is with async processing and ``ack: durable`` on a store that keeps items
        (a spool on disk or in NATS), or without async processing on such a store.
        """
        if self._writer is not None:
            return self._writer.spool.durable
        return getattr(self._store, "location", "") is not None

    @property
    def failures(self) -> list[FeedbackFailed]:
        """
        Accepted items that were not stored, oldest first (at most ``failures_max``).

        They are the items the store refused as invalid or conflicting, the items a
        step or processor rejected, and, with ``max_attempts`` set, the items whose
        writes kept failing. A durable spool also keeps them on disk (dead letters).
        """
        if self._writer is not None:
            return list(self._writer.failures)
        return list(self._sync_failures)

    @property
    def counters(self) -> dict[str, int]:
        """
        Background writer counts: accepted, stored, failed, retries, batches, pending.
        """
        if self._writer is not None:
            return self._writer.counters
        return {"failed": len(self._sync_failures)}

    def context(
        self,
        name: str,
        *,
        input: Any = None,  # noqa: A002, ANN401 - mirrors FeedbackContext
        context_id: str | None = None,
    ) -> FeedbackContext:
        """
        Return a `FeedbackContext` that captures into this collector's capture store.
        """
        return FeedbackContext(self.captures, name, input=input, context_id=context_id)

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Record a RATING of the output identified by ``trace_id``.

        ``model``, ``provider``, ``session_id`` and ``owner_id`` found in ``metadata``
        are also put in the item's context, where statistics and queries filter on them;
        a non-blank ``comment`` is kept in ``context["comment"]``.

        Raises:
            FeedbackValidationError: An argument is invalid.
            FeedbackProcessingError: A processor or step failed (without async processing).
            FeedbackStorageError: The store refused the item (without async processing).
        """
        if not isinstance(trace_id, str):
            check_id("trace_id", trace_id)  # a missing trace id is an error here
        item = self._rating(score, trace_id, comment, None, metadata)
        key = self.pipeline.resolve_processor(None, item)
        raw = None
        if self._config.store_raw_payloads:
            raw = {"trace_id": trace_id, "score": score, "comment": comment, "metadata": metadata}
        await self._accept(item, key, raw)

    async def collect_rating(
        self,
        score: float,
        *,
        trace_id: str | None = None,
        comment: str | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        processor: str | None = None,
    ) -> str:
        """
        Record a numeric rating; return the new item's id.

        ``trace_id`` and ``comment`` go into the context as with `submit_feedback`.
        """
        item = self._rating(score, trace_id, comment, context, metadata)
        key = self._processor_key(processor, item)
        raw = None
        if self._config.store_raw_payloads:
            raw = {
                "score": score,
                "trace_id": trace_id,
                "comment": comment,
                "context": context,
                "metadata": metadata,
                "processor": processor,
            }
        await self._accept(item, key, raw)
        return item.id

    async def collect_text(
        self,
        text: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        processor: str | None = None,
    ) -> str:
        """
        Record free-text feedback (non-blank); return the new item's id.
        """
        args = {"text": text, "context": context, "metadata": metadata, "processor": processor}
        return await self._collect(FeedbackType.TEXT, args, args)

    async def collect_correction(
        self,
        original: str,
        corrected: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        processor: str | None = None,
    ) -> str:
        """
        Record a correction of a model output; return the new item's id.

        The value stored is ``{"original": original, "corrected": corrected}``.
        """
        args = {
            "original": original,
            "corrected": corrected,
            "context": context,
            "metadata": metadata,
            "processor": processor,
        }
        return await self._collect(FeedbackType.CORRECTION, args, args)

    async def collect_label(
        self,
        label: str,
        input_data: Any,  # noqa: ANN401 - any JSON value
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        processor: str | None = None,
    ) -> str:
        """
        Record a ground-truth ``label`` for ``input_data``; return the new item's id.

        The value stored is ``{"label": label, "input": input_data}``; ``input_data``
        must be JSON (dict, list, str, number, bool or None).
        """
        args = {
            "label": label,
            "input": input_data,
            "context": context,
            "metadata": metadata,
            "processor": processor,
        }
        try:
            return await self._collect(FeedbackType.LABEL, args, args)
        except FeedbackValidationError as exc:
            if exc.field == "input" or exc.field.startswith(("input.", "input[")):
                raise exc.renamed("input_data" + exc.field[len("input") :]) from None
            raise

    async def submit_payload(self, payload: Mapping[str, Any], *, replace: bool = False) -> str:
        """
        Record feedback from a JSON object (e.g. an HTTP body); return the new item's id.

        ``type`` (default ``"rating"``) selects the fields: ``score`` (plus optional
        ``trace_id``, ``comment``) for rating, ``text``, ``original`` and ``corrected``,
        or ``label`` and ``input``; every type takes ``context``, ``metadata``,
        ``processor``, ``id`` (a client-given id makes retries idempotent) and
        ``created_at`` (an ISO 8601 time with its offset, for backfills). The payload is
        the raw payload kept for audit. With ``replace`` it is an update: the item
        replaces the one stored under its ``id`` (of the same owner; see
        `SupportsReplace`), or is stored when there is none.

        Raises:
            FeedbackValidationError: The payload is not an object, has an unknown key,
                lacks a required one, or a value breaks its rule.
        """
        kind, args = _parse_payload(payload)
        return await self._collect(kind, args, payload, replace=replace)

    def build_item(self, payload: Mapping[str, Any]) -> FeedbackItem:
        """
        Return the item `submit_payload` would record for ``payload``, without recording it.

        Raises:
            FeedbackValidationError: As `submit_payload`.
        """
        return self._build(*_parse_payload(payload))[0]

    async def submit_payloads(
        self, payloads: Sequence[Mapping[str, Any]], *, replace: bool = False
    ) -> list[str | FeedbackError]:
        """
        Record a batch of payloads as `submit_payload` does; return one result per payload.

        Each result is the new item's id, or the error that refused that payload (the
        others are still recorded): a `FeedbackValidationError`, or without async
        processing also what processing or storing that item raised (a rejection, a
        conflict with a stored item, the store being down). The accepted ones are
        appended to the spool together, so a durable batch shares its fsyncs. With
        ``replace`` they are updates (see `submit_payload`): of several under one id the
        last is written.

        Raises:
            FeedbackValidationError: ``payloads`` is not a list.
        """
        if isinstance(payloads, str | bytes) or not isinstance(payloads, Sequence):
            raise FeedbackValidationError("payloads", "must be a list of objects", payloads)
        results: list[str | FeedbackError] = []
        accepted: list[tuple[int, FeedbackItem, str, Any]] = []
        for payload in payloads:
            try:
                item, key = self._build(*_parse_payload(payload))
            except FeedbackValidationError as exc:
                results.append(exc)
                continue
            accepted.append((len(results), item, key, payload))
            results.append(item.id)
        given = accepted
        accepted = _last_of_each_id(accepted) if replace else _first_of_each_id(accepted, results)
        if self._writer is None or not self._config.enabled:
            await self._accept_each(accepted, results, replace=replace)
            if replace:  # an update superseded in the batch shares the outcome of the last
                last = {item.id: index for index, item, _, _ in accepted}
                for index, item, _, _ in given:
                    results[index] = results[last[item.id]]
            return results
        entries = []
        for _, item, key, payload in accepted:
            joined = self._join_capture(item)
            raw = (
                json_copy("raw_payload", payload, wrapped=True)
                if self._config.store_raw_payloads
                else None
            )
            entries.append(Entry(joined, key, raw, replace=replace))
        if entries:
            await self._enqueue(entries)  # one append: the batch shares its fsync
        return results

    async def submit(
        self,
        item: FeedbackItem,
        *,
        processor: str | None = None,
        raw_payload: Any = None,  # noqa: ANN401
    ) -> str:
        """
        Record an item built by the caller; return its id.

        ``raw_payload`` is what is kept for audit when ``store_raw_payloads`` is on
        (``item.to_dict()`` when omitted).

        Raises:
            FeedbackValidationError: ``item`` is not a FeedbackItem, is over a limit, or
                ``processor`` names no registered processor.
            FeedbackProcessingError: A processor or step failed (without async processing).
            FeedbackStorageError: The store refused the item (without async processing).
        """
        if not isinstance(item, FeedbackItem):
            raise FeedbackValidationError("item", "must be a FeedbackItem", item)
        item = copy_item(item)  # the caller may change its dicts later: keep what it sent
        item.check_limits(self._limits)
        key = self.pipeline.resolve_processor(processor, item)
        raw = raw_payload
        if raw is None and self._config.store_raw_payloads:
            raw = item.to_dict()
        await self._accept(item, key, raw)
        return item.id

    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """
        Return statistics over the configured window, filtered by model and provider.

        The dict holds ``total_count``, ``average_rating`` (None without ratings) and
        ``by_type``, then ``window_hours``, ``model``, ``provider``, ``rating``
        (``count``, ``min``, ``max``, ``percentiles``, ``distribution``) and
        ``by_model`` (``count`` and ``average_rating`` per model). Everything submitted
        before the call is included, also with async processing.

        Raises:
            FeedbackValidationError: ``model`` or ``provider`` is not a non-blank string.
            FeedbackStorageError: A filter was given but the store cannot filter.
        """
        check_optional_id("model", model)
        check_optional_id("provider", provider)
        await self.flush_for_read()
        window = self._config.window_hours
        if isinstance(self._store, SupportsStats):
            stats = await self._store.stats(window_hours=window, model=model, provider=provider)
            return stats.to_dict()
        if model is not None or provider is not None:
            msg = (
                f"{type(self._store).__name__} cannot filter statistics by model or provider; "
                "implement SupportsStats.stats() or use a built-in store"
            )
            raise FeedbackStorageError(msg)
        summary = await self._store.aggregate(window_hours=window)  # type: ignore[arg-type]
        return FeedbackStats(summary, window).to_dict()

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return the payload of ``item_id`` exactly as it was received, or None.

        Raises:
            FeedbackConfigurationError: ``store_raw_payloads`` is off.
        """
        check_id("item_id", item_id)
        if not self._config.store_raw_payloads:
            msg = "is off, so no raw payload was kept; turn it on to audit payloads"
            raise FeedbackConfigurationError("store_raw_payloads", msg)
        await self.flush_for_read()
        return await self._store.get_raw_payload(item_id)  # type: ignore[attr-defined]

    async def delete(
        self,
        where: FeedbackFilter | None = None,
        *,
        item_id: str | None = None,
        trace_id: str | None = None,
        session_id: str | None = None,
        owner_id: str | None = None,
    ) -> DeletionReceipt:
        """
        Delete feedback everywhere this collector keeps it, and return the receipt.

        Give a `FeedbackFilter` or the fields to match (``item_id``, ``trace_id``,
        ``session_id``, ``owner_id``). Items accepted before the call are written first,
        so none of them lands after the deletion. Removed: the items and their raw
        payloads from the store, the entries of a Redis cache, the captured operations
        their traces refer to, and the items set aside (dead letters, ``failures``).

        Raises:
            FeedbackValidationError: No field is set, or a field is invalid.
            FeedbackStorageError: The store cannot delete, or failed.
        """
        if where is None:
            where = FeedbackFilter(
                item_id=item_id, trace_id=trace_id, session_id=session_id, owner_id=owner_id
            )
        elif (item_id, trace_id, session_id, owner_id) != (None, None, None, None):
            msg = "give either a FeedbackFilter or the fields to match, not both"
            raise FeedbackValidationError("where", msg)
        where = check_deletion(where)
        store = self._store
        if not isinstance(store, SupportsDelete):
            msg = f"{type(store).__name__} cannot delete items; implement SupportsDelete.delete()"
            raise FeedbackStorageError(msg)
        # What was accepted before is written first; a store that fails meanwhile fails
        # the deletion, which would otherwise run before those items land.
        if self._writer is not None and not await self._writer.flush(through_outage=False):
            msg = (
                "The store is failing (or, without a writer in this process, the writers "
                "did not catch up), so feedback accepted before this deletion is not "
                "written yet; delete again once the store is back."
            )
            raise FeedbackStorageError(msg)
        traces = await self._matching_traces(where)
        removed = await store.delete(where)
        captures = sum(self.captures.discard(trace) for trace in traces)
        dead = await self._forget_failures(where)
        receipt = DeletionReceipt(
            criteria=where.to_dict(),
            items=removed.items,
            raw_payloads=removed.raw_payloads,
            captures=captures,
            cache_entries=removed.cache_entries,
            dead_letters=dead,
            deleted_at=datetime.now(UTC),
            rollup_rows=removed.rollup_rows,
        )
        _LOG.info(
            "Deleted feedback matching %s: %s",
            receipt.criteria,
            receipt.to_dict()["removed"],
            extra={"deletion": receipt.to_dict()},
        )
        return receipt

    async def _matching_traces(self, where: FeedbackFilter) -> set[str]:
        """
        Return the trace ids of matching items that have a capture (before they go).

        A filter with more than the trace (an owner, a session) only reaches the captures
        of items it matches, so that one owner's deletion never touches another's.
        """
        if where == FeedbackFilter(trace_id=where.trace_id):  # the trace alone: its capture
            return {where.trace_id} if where.trace_id is not None else set()
        if not len(self.captures):
            return set()
        scan = getattr(self._store, "scan", None)
        if scan is None:
            return set()
        traces = set()
        async for item in scan(where):
            trace = item.trace_id
            if trace is not None and self.captures.get(trace) is not None:
                traces.add(trace)
        return traces

    async def _forget_failures(self, where: FeedbackFilter) -> int:
        failures = self._writer.failures if self._writer is not None else self._sync_failures
        kept = [event for event in failures if not where.matches(event.item)]
        forgotten = len(failures) - len(kept)
        failures.clear()
        failures.extend(kept)
        spool = None if self._writer is None else self._writer.spool
        purge = getattr(spool, "delete_dead_letters", None)
        # A durable spool keeps every set-aside item on disk: its count is the record.
        return forgotten if purge is None else int(await purge(where))

    async def start(self) -> None:
        """
        Start the background writer and retention, when they are configured.

        The writer (async processing) first stores what an earlier run left in a durable
        spool. Retention (``retention_days``) runs where ``run_writer`` is on.

        Raises:
            FeedbackStorageError: The spool cannot be opened.
            FeedbackConfigurationError: The spool feeds another store.
        """
        if not self._reported_leftovers:
            self._reported_leftovers = True
            spool = None if self._writer is None else self._writer.spool
            await asyncio.to_thread(report_leftovers, store_location(self._store), spool)
        if self._writer is not None and self._config.enabled:
            await self._writer.start()
        if self.retention is not None and self._config.run_writer:
            self.retention.start()

    async def status(self) -> WriterStatus:
        """
        Return the state of the write path: spool, store reachability, retries, counts.
        """
        if self._writer is not None:
            return await self._writer.status()
        return WriterStatus(mode="sync", failed=len(self._sync_failures))

    async def flush(self, *, through_outage: bool = True) -> None:
        """
        Wait until every item accepted so far is stored or reported in ``failures``.

        With ``through_outage=False`` it also returns once the store's writes are
        failing; reads (statistics, the container's store) flush this way, so that they
        fail or read what is stored during an outage instead of waiting for its end.
        """
        if self._writer is not None:
            await self._writer.flush(through_outage=through_outage)

    async def flush_for_read(self) -> None:
        """
        `flush` as reads do: without waiting through a store outage.
        """
        await self.flush(through_outage=False)

    async def aclose(self, deadline: float | None = None) -> None:
        """
        Stop accepting items and stop the background writer once it has drained.

        The writer gets ``deadline`` seconds (``shutdown_timeout_seconds`` by default);
        what it has not stored by then stays in a durable spool for the next start.
        """
        self._closed = True
        if self.retention is not None:
            await self.retention.aclose()
        if self._writer is not None:
            await self._writer.aclose(deadline)

    async def _collect(
        self, kind: FeedbackType, args: Mapping[str, Any], raw: object, *, replace: bool = False
    ) -> str:
        item, key = self._build(kind, args)
        await self._accept(item, key, raw, replace=replace)
        return item.id

    def _build(self, kind: FeedbackType, args: Mapping[str, Any]) -> tuple[FeedbackItem, str]:
        """
        Validate the arguments of one submission; return the item and its processor key.
        """
        if kind is FeedbackType.RATING:
            item = self._rating(
                args.get("score"),
                args.get("trace_id"),
                args.get("comment"),
                args.get("context"),
                args.get("metadata"),
                **_identity(args),
            )
        else:
            item = self._other(kind, args)
        return item, self._processor_key(args.get("processor"), item)

    def _processor_key(self, processor: object, item: FeedbackItem) -> str:
        """
        Return the key of the processor for ``item``: the one named, or its type's.
        """
        key = None if processor is None else check_id("processor", processor)
        return self.pipeline.resolve_processor(key, item)

    def _rating(  # noqa: PLR0917 - the arguments of collect_rating
        self,
        score: object,
        trace_id: object,
        comment: object,
        context: object,
        metadata: object,
        item_id: str | None = None,
        created_at: datetime | None = None,
    ) -> FeedbackItem:
        """
        Validate and copy the arguments of a rating, once; return the item.
        """
        fields = self._mapping("context", context)
        metadata_copy = self._payload("metadata", metadata)
        limits = self._limits
        value = check_score("score", score)
        if trace_id is not None:
            fields["trace_id"] = check_id("trace_id", trace_id)
        if comment is not None:
            text = check_text("comment", comment, limits=limits, allow_blank=True)
            if text.strip():
                fields["comment"] = text
        # Copied (and checked) after the arguments replaced their keys, as they win.
        context_copy: dict[str, Any] = json_copy("context", fields) if fields else {}
        if metadata_copy:
            for key in _CONTEXT_FROM_METADATA:
                if key in metadata_copy and key not in context_copy:
                    context_copy[key] = check_id(f"metadata.{key}", metadata_copy[key])
        kind = FeedbackType.RATING
        item = checked_item(
            kind, value, context_copy, metadata_copy, item_id, created_at, copied=True
        )
        check_payload_limits(item.context, item.metadata, limits)
        return item

    def _other(self, kind: FeedbackType, args: Mapping[str, Any]) -> FeedbackItem:
        """
        Validate and copy the arguments of text, correction or label feedback, once.
        """
        context = self._mapping("context", args.get("context"))
        metadata = self._mapping("metadata", args.get("metadata"))
        limits = self._limits
        value: object
        if kind is FeedbackType.TEXT:
            value = check_text("text", args.get("text"), limits=limits)
            check_normalized_length("text", value, limits=limits)
        elif kind is FeedbackType.CORRECTION:
            value = {
                key: check_text(key, args.get(key), limits=limits, allow_blank=True)
                for key in ("original", "corrected")
            }
        else:
            data = json_copy("input", args.get("input"))
            check_payload_size("input", data, limits=limits)
            label = check_text("label", args.get("label"), limits=limits)
            check_normalized_length("label", label, limits=limits)
            value = {"label": label, "input": data}
        item = checked_item(kind, value, context, metadata, **_identity(args))
        # The value's texts were checked against the limits above; the payloads now.
        check_payload_limits(item.context, item.metadata, limits)
        return item

    def _mapping(self, field: str, value: object) -> dict[str, Any]:
        """
        Return a shallow copy of the dict ``value`` (None is an empty dict).
        """
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise FeedbackValidationError(field, "must be a dict", value)
        return dict(value)

    def _payload(self, field: str, value: object) -> dict[str, Any]:
        """
        Return a checked deep copy of the dict ``value`` (None is an empty dict).
        """
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise FeedbackValidationError(field, "must be a dict", value)
        copied: dict[str, Any] = json_copy(field, value)
        return copied

    async def _accept_each(
        self,
        accepted: list[tuple[int, FeedbackItem, str, Any]],
        results: list[str | FeedbackError],
        *,
        replace: bool,
    ) -> None:
        """
        Accept each entry in the caller's task; an error is that entry's result only.

        Raises:
            FeedbackError: The collector is closed (no entry could be accepted).
        """
        if self._closed:
            raise FeedbackError(CLOSED)
        for index, item, key, payload in accepted:
            try:
                await self._accept(item, key, payload, replace=replace)
            except FeedbackError as exc:  # this item only: the others are still recorded
                results[index] = exc

    async def _accept(
        self,
        item: FeedbackItem,
        processor: str,
        raw: Any,  # noqa: ANN401 - any JSON value
        *,
        replace: bool = False,
    ) -> None:
        if not self._config.enabled:
            return
        item = self._join_capture(item)
        raw_copy = (
            json_copy("raw_payload", raw, wrapped=True) if self._config.store_raw_payloads else None
        )
        if self._writer is not None:
            await self._enqueue([Entry(item, processor, raw_copy, replace=replace)])
            return
        if self._closed:
            raise FeedbackError(CLOSED)
        if self.events.has_subscribers(FeedbackSubmitted):
            await self.events.publish(FeedbackSubmitted(item, raw_copy))
        try:
            item = await self.pipeline.run(item, processor)
        except FeedbackError as exc:  # rejected, failed, or over a limit after the steps
            await self._fail_sync(FeedbackFailed(item, "processing", exc, 0))
            raise
        if self.events.has_subscribers(FeedbackProcessed):
            await self.events.publish(FeedbackProcessed(item, processor))
        raws = {item.id: raw_copy} if self._config.store_raw_payloads else None
        error = await write_items(self._store, [item], raws, replace=replace)
        if error is not None:
            await self._fail_sync(FeedbackFailed(item, "storage", error, 1))
            if isinstance(error, FeedbackError):
                raise error
            msg = f"The store refused feedback {item.id!r}: {error}"
            raise FeedbackStorageError(msg) from error
        if self.events.has_subscribers(FeedbackStored):
            await self.events.publish(FeedbackStored(item))

    async def _enqueue(self, entries: list[Entry]) -> None:
        """
        Announce ``entries`` and hand them to the writer in one append.

        A closed collector announces nothing; entries the spool refuses (full) were
        announced, so subscribers also hear that they failed (stage ``accept``).
        """
        writer = self._writer
        assert writer is not None  # noqa: S101 - async processing only
        writer.check_open()
        if self.events.has_subscribers(FeedbackSubmitted):
            for entry in entries:
                await self.events.publish(FeedbackSubmitted(entry.item, entry.raw_payload))
        try:
            if len(entries) == 1:
                await writer.put(entries[0])
            else:
                await writer.put_many(entries)
        except FeedbackError as exc:
            if self.events.has_subscribers(FeedbackFailed):
                for entry in entries:
                    await self.events.publish(FeedbackFailed(entry.item, "accept", exc, 0))
            raise

    async def _fail_sync(self, event: FeedbackFailed) -> None:
        self._sync_failures.append(event)
        await self.events.publish(event)

    def _join_capture(self, item: FeedbackItem) -> FeedbackItem:
        trace_id = item.trace_id
        capture = None if trace_id is None else self.captures.get(trace_id)
        if capture is None or "captured" in item.context:
            return item
        captured = capture.to_dict()
        context = {**item.context, "captured": captured}
        limit = self._limits.max_payload_chars
        if _chars(context) > limit:
            # Never let a large capture cost the user's feedback: keep its outline only,
            # or nothing of it when even that would not fit.
            context["captured"] = {
                "name": captured["name"],
                "error": captured["error"],
                "truncated": True,
            }
            if _chars(context) > limit:
                return item
        return item.replace(context=context)


def _chars(value: object) -> int:
    """The length of ``value``'s JSON in characters, as the limits count it."""
    return len(orjson.dumps(value).decode())


def _identity(args: Mapping[str, Any]) -> dict[str, Any]:
    """
    The ``id`` and ``created_at`` a payload gives, checked (generated when absent).
    """
    given: dict[str, Any] = {}
    if args.get("id") is not None:
        given["item_id"] = check_item_id("id", args["id"])
    if args.get("created_at") is not None:
        given["created_at"] = _timestamp(args["created_at"])
    return given


def _timestamp(value: object) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            msg = "must be an ISO 8601 time with a UTC offset"
            raise FeedbackValidationError("created_at", msg, value) from None
    return check_timestamp(value)


def _last_of_each_id(
    accepted: list[tuple[int, FeedbackItem, str, Any]],
) -> list[tuple[int, FeedbackItem, str, Any]]:
    """
    Keep the last update of each id in a batch (the earlier ones are superseded by it).
    """
    last = {entry[1].id: entry for entry in accepted}
    return [entry for entry in accepted if last[entry[1].id] is entry]


def _first_of_each_id(
    accepted: list[tuple[int, FeedbackItem, str, Any]], results: list[str | FeedbackError]
) -> list[tuple[int, FeedbackItem, str, Any]]:
    """
    Keep the first item of each id in a batch; a later one is a conflict unless the same.

    A different item under an id the batch already holds would be accepted, then set
    aside by the writer: its sender hears of it now, in its own result.
    """
    first: dict[str, FeedbackItem] = {}
    kept = []
    for entry in accepted:
        index, item = entry[0], entry[1]
        known = first.setdefault(item.id, item)
        if known is item:
            kept.append(entry)
        elif not same_item(known, item):
            results[index] = FeedbackConflictError([item.id], in_batch=True)
    return kept


def _parse_payload(payload: object) -> tuple[FeedbackType, dict[str, Any]]:
    """
    Return the type of a JSON payload and the arguments of its fields.

    Raises:
        FeedbackValidationError: The payload is not an object, or has an unknown key.
    """
    if not isinstance(payload, Mapping):
        raise FeedbackValidationError("payload", "must be a JSON object", payload)
    kind = coerce_type(payload.get("type", FeedbackType.RATING.value), "type")
    allowed = _PAYLOAD_FIELDS[kind]
    for key in payload:
        if key != "type" and key not in allowed:
            known = ", ".join(sorted((*allowed, "type")))
            msg = f"is not a field of {kind.value} feedback (known: {known})"
            raise FeedbackValidationError(str(key), msg)
    return kind, {key: payload.get(key) for key in allowed}
