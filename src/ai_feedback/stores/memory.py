"""
The in-memory store: the default, for development, tests and short-lived processes.

Every query uses an index kept sorted by ``created_at``, so nothing scans the whole store:
``find_by_session`` and ``find_by_type`` read the tail of one index, and ``aggregate`` /
``stats`` binary-search the window start and sum one array slice per type. Indexes are
kept for each model, each provider and each (model, provider) pair, which is what makes
filtered statistics as cheap as unfiltered ones.

The store is bounded by ``max_items``: past it the oldest items (by ``created_at``) are
evicted, counted in `MemoryFeedbackStore.evicted_count` and logged at WARNING.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ai_feedback._models import (
    Cursor,
    Deleted,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
    check_cursor,
    coerce_type,
    copy_item,
)
from ai_feedback._validation import DEFAULT_LIMITS, Limits, check_id, json_copy
from ai_feedback.exceptions import FeedbackConflictError, FeedbackValidationError
from ai_feedback.result import Err, Ok, Result
from ai_feedback.stores._common import (
    ClosingContext,
    check_bucket,
    check_deletion,
    check_filter,
    check_filters,
    check_item,
    check_limit,
    conflicts,
    cutoff,
    empty_summary,
    fold_series,
    foreign,
    last_of_each_id,
    rating_stats,
    scan_pages,
    stats_filters,
)

__all__ = ["DEFAULT_MAX_ITEMS", "MemoryFeedbackStore"]

DEFAULT_MAX_ITEMS = 100_000
_LOG = logging.getLogger("ai_feedback")
_TYPES = tuple(FeedbackType)
_StatsKey = tuple[str | None, str | None]
# Evicted entries are dropped from the arrays in bulk once this many have accumulated.
_COMPACT_AFTER = 1024


class _Series:
    """
    Ids (and, for ratings, values) sorted by timestamp, oldest first.

    Every series orders by (timestamp, id), so the globally oldest item is always at
    the front of each series that holds it; eviction advances ``start`` and compacts
    lazily instead of shifting the arrays on every eviction.
    """

    __slots__ = ("ids", "start", "ts", "values")

    def __init__(self, *, with_values: bool = False) -> None:
        self.ts = array("d")
        self.ids: list[str] = []
        self.values: array[float] | None = array("d") if with_values else None
        self.start = 0

    def __len__(self) -> int:
        return len(self.ids) - self.start

    def add(self, ts: float, item_id: str, value: float = 0.0) -> None:
        # Order by (created_at, id), as the SQL stores do, so that ties read back alike.
        last = len(self.ids) - 1
        if (
            last < self.start
            or ts > self.ts[last]
            or (ts == self.ts[last] and item_id > self.ids[last])
        ):
            self.ts.append(ts)
            self.ids.append(item_id)
            if self.values is not None:
                self.values.append(value)
            return
        lo = bisect_left(self.ts, ts, lo=self.start)
        hi = bisect_right(self.ts, ts, lo=lo)
        pos = bisect_right(self.ids, item_id, lo=lo, hi=hi)
        self.ts.insert(pos, ts)
        self.ids.insert(pos, item_id)
        if self.values is not None:
            self.values.insert(pos, value)

    def remove(self, ts: float, item_id: str) -> None:
        if self.start < len(self.ids) and self.ids[self.start] == item_id:
            self.start += 1  # the oldest (eviction): no memmove
        else:
            lo = bisect_left(self.ts, ts, lo=self.start)
            hi = bisect_right(self.ts, ts, lo=lo)
            pos = bisect_left(self.ids, item_id, lo=lo, hi=hi)
            del self.ts[pos], self.ids[pos]
            if self.values is not None:
                del self.values[pos]
        if self.start > _COMPACT_AFTER and self.start * 2 > len(self.ids):
            del self.ts[: self.start], self.ids[: self.start]
            if self.values is not None:
                del self.values[: self.start]
            self.start = 0

    def newest_before(self, before: tuple[float, str] | None) -> Iterator[str]:
        """
        Yield ids newest first, starting after ``before`` (a timestamp and id) if given.
        """
        end = len(self.ids)
        if before is not None:
            ts, item_id = before
            lo = bisect_left(self.ts, ts, lo=self.start)
            hi = bisect_right(self.ts, ts, lo=lo)
            end = bisect_left(self.ids, item_id, lo=lo, hi=hi)
        for i in range(end - 1, self.start - 1, -1):
            yield self.ids[i]

    def first_since(self, cutoff: float) -> int:
        return bisect_left(self.ts, cutoff, lo=self.start)

    def newest(self, limit: int) -> list[str]:
        lo = max(self.start, len(self.ids) - limit)
        return self.ids[lo:][::-1]

    def values_since(self, cutoff: float) -> array[float]:
        if self.values is None:
            return array("d")
        return self.values[self.first_since(cutoff) :]


class _Group:
    """
    One series per feedback type, for one (model, provider) filter.
    """

    __slots__ = ("by_type",)

    def __init__(self) -> None:
        self.by_type = {t: _Series(with_values=t is FeedbackType.RATING) for t in _TYPES}

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_type.values())

    def summary(self, cutoff: float) -> tuple[FeedbackSummary, array[float]]:
        counts = {t.value: len(s.ids) - s.first_since(cutoff) for t, s in self.by_type.items()}
        ratings = self.by_type[FeedbackType.RATING].values_since(cutoff)
        average = sum(ratings) / len(ratings) if ratings else None
        return FeedbackSummary(sum(counts.values()), average, counts), ratings


class MemoryFeedbackStore(ClosingContext):
    """
    A bounded in-memory `FeedbackStoreProtocol` with filtered statistics.

    Items are copied on the way in and out, so neither the caller's dicts nor the
    returned items alias what the store holds.

    Args:
        max_items: Most items held; the oldest are evicted beyond it.
        limits: Size limits checked by ``save``.

    Raises:
        FeedbackValidationError: ``max_items`` is not a positive integer.
    """

    def __init__(
        self, *, max_items: int = DEFAULT_MAX_ITEMS, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise FeedbackValidationError("max_items", "must be a positive integer", max_items)
        self._max_items = max_items
        self._limits = limits
        self._items: dict[str, FeedbackItem] = {}
        self._timeline = _Series()
        self._sessions: dict[str, _Series] = {}
        self._owners: dict[str, _Series] = {}
        self._groups: dict[_StatsKey, _Group] = {(None, None): _Group()}
        self._evicted = 0
        self._raw: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<MemoryFeedbackStore items={len(self._items)} max_items={self._max_items}>"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def location(self) -> None:
        """
        None: the items live in this process only and do not survive it.
        """
        return

    @property
    def evicted_count(self) -> int:
        """
        How many items were evicted because the store was full.
        """
        return self._evicted

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Store a copy of ``feedback``; the same item again changes nothing (``Ok(id)``).

        A different item under a known id returns ``Err(FeedbackConflictError)``.

        Raises:
            FeedbackValidationError: ``feedback`` is not a FeedbackItem or is over a limit.
        """
        check_item(feedback, self._limits)
        clash = conflicts([feedback], self._items)
        if clash:
            return Err(FeedbackConflictError(clash))
        self._insert(feedback)
        return Ok(feedback.id)

    async def save_many(
        self,
        items: Iterable[FeedbackItem],
        *,
        raw_payloads: Mapping[str, Any] | None = None,
    ) -> Result[list[str], Exception]:
        """
        Store every item of ``items`` (all are validated first); return their ids.

        ``raw_payloads`` maps item ids to the payloads received, kept for `get_raw_payload`
        (the first payload of an id wins).

        A different item under a known id (or twice in the batch) is a conflict: the
        result is ``Err(FeedbackConflictError)`` naming the ids, and nothing is stored.

        Raises:
            FeedbackValidationError: An element is invalid; then nothing is stored.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        clash = conflicts(batch, self._items)
        if clash:
            return Err(FeedbackConflictError(clash))
        for item in batch:
            self._insert(item)
        if raw_payloads:
            for item_id, payload in raw_payloads.items():
                if item_id in self._items and item_id not in self._raw:
                    self._raw[item_id] = json_copy("raw_payloads", payload, wrapped=True)
        return Ok([item.id for item in batch])

    async def replace_many(
        self,
        items: Iterable[FeedbackItem],
        *,
        raw_payloads: Mapping[str, Any] | None = None,
    ) -> Result[list[str], Exception]:
        """
        Store each item, replacing the item stored under its id (an update); return the ids.

        An id given twice in the batch keeps its last item. An item stored under the id
        with another owner (``context.owner_id``) is not replaced: the result is
        ``Err(FeedbackConflictError)`` naming the ids, and nothing is stored. A replaced
        item's raw payload is replaced too (or dropped when none is given).

        Raises:
            FeedbackValidationError: An element is invalid; then nothing is stored.
        """
        batch = list(items)
        for item in batch:
            check_item(item, self._limits)
        unique = last_of_each_id(batch)
        payloads = {} if raw_payloads is None else raw_payloads
        if not isinstance(payloads, Mapping) or payloads.keys() - {i.id for i in unique}:
            msg = "must be a dict of ids of items in the batch -> payload"
            raise FeedbackValidationError("raw_payloads", msg)
        owners = {i.id: self._items[i.id].owner_id for i in unique if i.id in self._items}
        taken = foreign(unique, owners)
        if taken:
            return Err(FeedbackConflictError(taken))
        copies = {
            item_id: json_copy("raw_payloads", payload, wrapped=True)
            for item_id, payload in payloads.items()
        }
        for item in unique:
            old = self._items.get(item.id)
            if old is not None:
                self._remove(old)
                self._raw.pop(item.id, None)
            self._insert(item)
            if item.id in copies:
                self._raw[item.id] = copies[item.id]
        return Ok([item.id for item in batch])

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return a copy of the raw payload saved with ``item_id``, or None.
        """
        check_id("item_id", item_id)
        payload = self._raw.get(item_id)
        return None if payload is None else json_copy("raw_payload", payload, wrapped=True)

    async def get(self, item_id: str) -> FeedbackItem | None:
        """
        Return a copy of the item with ``item_id``, or None.
        """
        check_id("item_id", item_id)
        item = self._items.get(item_id)
        return None if item is None else copy_item(item)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items of ``session_id``, newest first.
        """
        check_id("session_id", session_id)
        series = self._sessions.get(session_id)
        return [] if series is None else self._copies(series.newest(len(series)))

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.
        """
        kind = coerce_type(feedback_type)
        check_limit(limit)
        return self._copies(self._groups[None, None].by_type[kind].newest(limit))

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackSummary:
        """
        Summarize the items created in the last ``window_hours``, optionally filtered.
        """
        if owner_id is not None or feedback_type is not None:
            figures = await self.stats(
                window_hours=window_hours,
                model=model,
                provider=provider,
                owner_id=owner_id,
                feedback_type=feedback_type,
            )
            return figures.summary
        since = cutoff(window_hours) / 1_000_000  # as the items' float timestamps
        group = self._groups.get(check_filters(model, provider))
        if group is None:
            return empty_summary()
        return group.summary(since)[0]

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
        Return the window's statistics with rating percentiles and a per-model breakdown.

        With ``owner_id`` or ``feedback_type``, the window's items (the owner's) are read
        one by one (the indexes per model and provider span all owners and types).
        """
        since = cutoff(window_hours) / 1_000_000  # as the items' float timestamps
        model, provider, owner, kind = stats_filters(model, provider, owner_id, feedback_type)
        key = (model, provider)
        if owner is not None or kind is not None:
            index = self._timeline if owner is None else self._owners.get(owner)
            return self._scanned_stats(index, kind, since, window_hours, key)
        group = self._groups.get(key)
        if group is None:
            return FeedbackStats(empty_summary(), window_hours, model, provider)
        summary, ratings = group.summary(since)
        by_model: dict[str, dict[str, Any]] = {}
        for (group_model, group_provider), other in self._groups.items():
            if group_model is None or group_provider != provider:
                continue
            if model is not None and group_model != model:
                continue
            row, _ = other.summary(since)
            if row.total_count:
                by_model[group_model] = {
                    "count": row.total_count,
                    "average_rating": row.average_rating,
                }
        return rating_stats(
            summary,
            ratings,
            window_hours=window_hours,
            model=model,
            provider=provider,
            by_model=by_model,
        )

    def _window_items(
        self,
        series: _Series | None,
        since: float,
        model: str | None,
        provider: str | None,
        kind: str | None,
    ) -> Iterator[FeedbackItem]:
        """
        Yield the items of ``series`` from ``since`` on that match the filters, one by one.
        """
        ids = [] if series is None else series.ids[series.first_since(since) :]
        for item_id in ids:
            item = self._items[item_id]
            if (
                (model is None or item.model == model)
                and (provider is None or item.provider == provider)
                and (kind is None or item.feedback_type.value == kind)
            ):
                yield item

    def _scanned_stats(
        self,
        series: _Series | None,
        kind: str | None,
        since: float,
        window_hours: float,
        key: _StatsKey,
    ) -> FeedbackStats:
        model, provider = key
        counts = {t.value: 0 for t in _TYPES}
        ratings: list[float] = []
        per_model: dict[str, int] = {}
        model_ratings: dict[str, list[float]] = {}
        for item in self._window_items(series, since, model, provider, kind):
            counts[item.feedback_type.value] += 1
            is_rating = item.feedback_type is FeedbackType.RATING
            if is_rating:
                ratings.append(float(item.value))
            if item.model is not None:
                per_model[item.model] = per_model.get(item.model, 0) + 1
                if is_rating:
                    model_ratings.setdefault(item.model, []).append(float(item.value))
        average = sum(ratings) / len(ratings) if ratings else None
        summary = FeedbackSummary(sum(counts.values()), average, counts)
        by_model = {
            name: {"count": n, "average_rating": _mean(model_ratings.get(name))}
            for name, n in sorted(per_model.items())
        }
        return rating_stats(
            summary,
            ratings,
            window_hours=window_hours,
            model=model,
            provider=provider,
            by_model=by_model,
        )

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
        Return the window's items per whole hour or day, oldest first (empty buckets left out).

        The items of the window are read one by one (at most ``max_items`` of them).
        """
        bucket = check_bucket(bucket)
        since = cutoff(window_hours) / 1_000_000  # as the items' float timestamps
        model, provider, owner, kind = stats_filters(model, provider, owner_id, feedback_type)
        index = self._timeline if owner is None else self._owners.get(owner)
        hours: list[tuple[datetime, int, int, float]] = []
        for item in self._window_items(index, since, model, provider, kind):
            is_rating = item.feedback_type is FeedbackType.RATING
            hour = item.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            hours.append((hour, 1, int(is_rating), float(item.value) if is_rating else 0.0))
        return fold_series(hours, bucket)

    async def query(
        self,
        where: FeedbackFilter | None = None,
        *,
        limit: int = 100,
        before: Cursor | None = None,
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items matching ``where``, newest first, after ``before``.

        ``before`` is the (``created_at``, ``id``) of the last item of the previous page.
        """
        where = check_filter(where)
        check_limit(limit)
        cursor = check_cursor(before)
        position = None if cursor is None else (cursor[0].timestamp(), cursor[1])
        found: list[FeedbackItem] = []
        for item_id in self._candidates(where).newest_before(position):
            item = self._items[item_id]
            if where.matches(item):
                found.append(copy_item(item))
                if len(found) >= limit:
                    break
        return found

    def _candidates(self, where: FeedbackFilter) -> _Series:
        """
        The narrowest index holding every item ``where`` can match.
        """
        empty = _Series()
        if where.item_id is not None:
            item = self._items.get(where.item_id)
            single = _Series()
            if item is not None:
                single.add(item.created_at.timestamp(), item.id)
            return single
        if where.session_id is not None:
            return self._sessions.get(where.session_id, empty)
        if where.owner_id is not None:
            return self._owners.get(where.owner_id, empty)
        if where.feedback_type is not None:
            group = self._groups.get((where.model, where.provider))
            return empty if group is None else group.by_type[where.feedback_type]
        return self._timeline

    def _insert(self, feedback: FeedbackItem) -> None:
        if feedback.id in self._items:
            return
        item = copy_item(feedback)
        self._items[item.id] = item
        ts = item.created_at.timestamp()
        self._timeline.add(ts, item.id)
        session = item.session_id
        if session is not None:
            self._sessions.setdefault(session, _Series()).add(ts, item.id)
        owner = item.owner_id
        if owner is not None:
            self._owners.setdefault(owner, _Series()).add(ts, item.id)
        value = float(item.value) if item.feedback_type is FeedbackType.RATING else 0.0
        for key in _keys_of(item):
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            group.by_type[item.feedback_type].add(ts, item.id, value)
        if len(self._items) > self._max_items:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        self._remove(self._items[self._timeline.ids[self._timeline.start]])
        self._evicted += 1
        if self._evicted == 1 or self._evicted % 10_000 == 0:
            _LOG.warning(
                "In-memory feedback store is full (max_items=%d); evicted %d oldest item(s) "
                "so far. Raise memory_max_items or use a durable store.",
                self._max_items,
                self._evicted,
                extra={"max_items": self._max_items, "evicted": self._evicted},
            )

    def _remove(self, item: FeedbackItem) -> bool:
        """
        Remove ``item`` from the store and every index; return whether it had a raw payload.
        """
        del self._items[item.id]
        had_raw = self._raw.pop(item.id, None) is not None
        ts = item.created_at.timestamp()
        self._timeline.remove(ts, item.id)
        for index, name in ((self._sessions, item.session_id), (self._owners, item.owner_id)):
            if name is not None:
                series = index[name]
                series.remove(ts, item.id)
                if not series:
                    del index[name]
        for key in _keys_of(item):
            group = self._groups[key]
            group.by_type[item.feedback_type].remove(ts, item.id)
            if key != (None, None) and not group:
                del self._groups[key]
        return had_raw

    def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield every item matching ``where``, newest first, in constant memory (keyset pages).
        """
        return scan_pages(self.query, where, page_size)

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Remove the items matching ``where`` (and their raw payloads).

        Args:
            where: Which items; it must set at least one field.
            limit: At most this many items, the oldest first (for bounded batches).

        Raises:
            FeedbackValidationError: ``where`` is empty or ``limit`` is not positive.
        """
        where = check_deletion(where)
        if limit is not None:
            check_limit(limit)
        series = self._candidates(where)
        end = len(series.ids)
        if where.until is not None:  # the float bound may admit ties; matches() is exact
            end = bisect_right(series.ts, where.until.timestamp(), lo=series.start)
        doomed: list[FeedbackItem] = []
        for i in range(series.start, end):  # oldest first, stopping at the limit
            item = self._items[series.ids[i]]
            if where.matches(item):
                doomed.append(item)
                if limit is not None and len(doomed) >= limit:
                    break
        raw = sum(self._remove(item) for item in doomed)
        return Deleted(items=len(doomed), raw_payloads=raw)

    def _copies(self, ids: list[str]) -> list[FeedbackItem]:
        return [copy_item(self._items[i]) for i in ids]


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _keys_of(item: FeedbackItem) -> list[_StatsKey]:
    model, provider = item.model, item.provider
    keys: list[_StatsKey] = [(None, None)]
    if model is not None:
        keys.append((model, None))
    if provider is not None:
        keys.append((None, provider))
    if model is not None and provider is not None:
        keys.append((model, provider))
    return keys
