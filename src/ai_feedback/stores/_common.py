"""
Helpers every store shares: argument checks and the statistics built from rating values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from ai_feedback._models import (
    DISTRIBUTION_MAX_VALUES,
    Cursor,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
    coerce_type,
)
from ai_feedback._validation import MAX_WINDOW_HOURS, Limits, check_id
from ai_feedback.exceptions import FeedbackValidationError

__all__ = [
    "ClosingContext",
    "check_bucket",
    "check_deletion",
    "check_filter",
    "check_filters",
    "check_item",
    "check_limit",
    "check_window",
    "conflicts",
    "cutoff",
    "empty_summary",
    "fold_series",
    "foreign",
    "last_of_each_id",
    "newer_filters",
    "rating_stats",
    "rating_stats_from_counts",
    "same_item",
    "scan_pages",
    "stats_filters",
    "store_location",
]


def rating_stats(
    summary: FeedbackSummary,
    ratings: Iterable[float],
    *,
    window_hours: float,
    model: str | None,
    provider: str | None,
    by_model: dict[str, dict[str, Any]],
) -> FeedbackStats:
    """
    Build `FeedbackStats` from a summary and the window's rating values.
    """
    # Counting first (in C) keeps this linear for the usual few distinct ratings (stars,
    # thumbs); only the distinct values are sorted.
    return rating_stats_from_counts(
        summary,
        Counter(ratings),
        window_hours=window_hours,
        model=model,
        provider=provider,
        by_model=by_model,
    )


def rating_stats_from_counts(
    summary: FeedbackSummary,
    counts: Mapping[float, int],
    *,
    window_hours: float,
    model: str | None,
    provider: str | None,
    by_model: dict[str, dict[str, Any]],
) -> FeedbackStats:
    """
    Build `FeedbackStats` from a summary and the window's count of each rating value.

    Percentiles are nearest rank; the distribution is omitted past
    ``DISTRIBUTION_MAX_VALUES`` distinct values.
    """
    if not counts:
        return FeedbackStats(summary, window_hours, model, provider, by_model=by_model)
    distinct = sorted(counts)
    n = sum(counts.values())
    ranks = {p: max(0, math.ceil(p / 100 * n) - 1) for p in (50, 90, 99)}
    percentiles: dict[str, float] = {}
    seen = 0
    for value in distinct:
        seen += counts[value]
        for p, rank in ranks.items():
            if rank < seen and f"p{p}" not in percentiles:
                percentiles[f"p{p}"] = number(value)
    distribution = (
        {str(number(v)): counts[v] for v in distinct}
        if len(distinct) <= DISTRIBUTION_MAX_VALUES
        else None
    )
    return FeedbackStats(
        summary,
        window_hours,
        model,
        provider,
        rating_count=n,
        rating_min=number(distinct[0]),
        rating_max=number(distinct[-1]),
        rating_percentiles={f"p{p}": percentiles[f"p{p}"] for p in ranks},
        rating_distribution=distribution,
        by_model=by_model,
    )


def number(value: float) -> float:
    # 5.0 and 5 are the same rating; show whole numbers without ".0".
    return int(value) if float(value).is_integer() else value


def same_item(a: FeedbackItem, b: FeedbackItem) -> bool:
    """
    Return whether saving ``b`` over ``a`` (same id) changes nothing.

    Type, value, context and metadata are compared as JSON values (``1 == 1.0``);
    ``created_at`` is not, so a retry that was stamped again on arrival is the same item.
    """
    return (
        a.feedback_type is b.feedback_type
        and json_equal(a.value, b.value)
        and json_equal(a.context, b.context)
        and json_equal(a.metadata, b.metadata)
    )


def json_equal(a: object, b: object) -> bool:
    """
    Return whether two JSON values are equal as JSON: ``1 == 1.0``, but ``true != 1``.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(a[key], b[key]) for key in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return (numbers or type(a) is type(b)) and a == b


def conflicts(batch: Iterable[FeedbackItem], stored: Mapping[str, FeedbackItem]) -> list[str]:
    """
    Return the ids in ``batch`` whose item differs from the one stored under that id.

    An item also conflicts with an earlier item of the batch under the same id.
    """
    seen: dict[str, FeedbackItem] = {}
    found: set[str] = set()
    for item in batch:
        first = seen.setdefault(item.id, stored.get(item.id, item))
        if first is not item and not same_item(first, item):
            found.add(item.id)
    return sorted(found)


def last_of_each_id(batch: Iterable[FeedbackItem]) -> list[FeedbackItem]:
    """
    Return one item per id, the last given (a replacement's latest version wins).
    """
    last: dict[str, FeedbackItem] = {}
    for item in batch:
        last.pop(item.id, None)
        last[item.id] = item
    return list(last.values())


def foreign(batch: Iterable[FeedbackItem], stored_owners: Mapping[str, object]) -> list[str]:
    """
    Return the ids in ``batch`` stored under another owner: a replacement may not take them.
    """
    return sorted(
        item.id
        for item in batch
        if item.id in stored_owners and stored_owners[item.id] != item.owner_id
    )


def store_location(store: object) -> str | None:
    """
    Return where ``store`` keeps its items (its ``location``), or None when nowhere durable.

    A store without a ``location`` attribute is named by its class, and assumed durable.
    """
    if hasattr(store, "location"):
        location = store.location
        return None if location is None else str(location)
    return f"{type(store).__module__}.{type(store).__qualname__}"


def check_filters(model: object, provider: object) -> tuple[str | None, str | None]:
    return (
        None if model is None else check_id("model", model),
        None if provider is None else check_id("provider", provider),
    )


def check_filter(where: object) -> FeedbackFilter:
    """
    Return ``where`` if it is a `FeedbackFilter` (an empty one for None).
    """
    if where is None:
        return FeedbackFilter()
    if not isinstance(where, FeedbackFilter):
        raise FeedbackValidationError("where", "must be a FeedbackFilter or None", where)
    return where


def check_deletion(where: object) -> FeedbackFilter:
    """
    Return ``where`` if it is a `FeedbackFilter` that sets at least one field.

    An empty filter would delete everything: that is never what a deletion by id,
    trace, session or owner means.
    """
    if not isinstance(where, FeedbackFilter):
        raise FeedbackValidationError("where", "must be a FeedbackFilter", where)
    if where.is_empty():
        msg = "must set at least one field (item_id, trace_id, session_id, owner_id, until...)"
        raise FeedbackValidationError("where", msg)
    return where


def check_item(feedback: object, limits: Limits) -> None:
    if not isinstance(feedback, FeedbackItem):
        raise FeedbackValidationError("feedback", "must be a FeedbackItem", feedback)
    feedback.check_limits(limits)


def check_limit(limit: object, field: str = "limit") -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise FeedbackValidationError(field, "must be a positive integer", limit)


def check_window(window_hours: object) -> float:
    """
    Return ``window_hours`` if it is a positive, finite number of hours.
    """
    if (
        isinstance(window_hours, bool)
        or not isinstance(window_hours, int | float)
        or window_hours != window_hours  # NaN  # noqa: PLR0124
        or window_hours <= 0
    ):
        raise FeedbackValidationError("window_hours", "must be a positive number", window_hours)
    if window_hours > MAX_WINDOW_HOURS:  # infinity and integers past any float included
        msg = f"must be at most {MAX_WINDOW_HOURS:,} hours (about 114 years)"
        raise FeedbackValidationError("window_hours", msg, window_hours)
    return float(window_hours)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def cutoff(window_hours: object) -> int:
    """
    Return the start of the window ending now, in whole microseconds since the epoch.

    An item counts when it was created at or after it. Every store compares its items'
    microseconds with this same integer, so all agree on the items at the edge.
    """
    hours = check_window(window_hours)
    now = (datetime.now(UTC) - _EPOCH) // _MICROSECOND
    return now - round(hours * 3_600_000_000)


def stats_filters(
    model: object, provider: object, owner_id: object, feedback_type: object
) -> tuple[str | None, str | None, str | None, str | None]:
    """
    Return the checked filters of a statistics call: model, provider, owner, type value.
    """
    model, provider = check_filters(model, provider)
    owner = None if owner_id is None else check_id("owner_id", owner_id)
    kind = None if feedback_type is None else coerce_type(feedback_type).value
    return model, provider, owner, kind


def newer_filters(owner_id: str | None, feedback_type: object) -> dict[str, Any]:
    """
    The owner and type filters to pass to a wrapped store, only when given.

    Stores written before those filters existed take neither keyword.
    """
    filters: dict[str, Any] = {}
    if owner_id is not None:
        filters["owner_id"] = owner_id
    if feedback_type is not None:
        filters["feedback_type"] = feedback_type
    return filters


def check_bucket(bucket: object) -> SeriesBucket:
    """
    Return ``bucket`` if it is ``"hour"`` or ``"day"``.
    """
    if bucket == "hour":
        return "hour"
    if bucket == "day":
        return "day"
    raise FeedbackValidationError("bucket", "must be 'hour' or 'day'", bucket)


def fold_series(
    hours: Iterable[tuple[datetime, int, int, float]], bucket: SeriesBucket
) -> list[SeriesPoint]:
    """
    Return the points of per-hour rows ``(hour start, count, rating count, rating sum)``.

    Rows may come in any order and repeat an hour; hours are summed into their UTC day
    when ``bucket`` is ``"day"``. Empty buckets are left out; points are oldest first.
    """
    sums: dict[datetime, list[Any]] = {}
    for start, count, rated, total in hours:
        key = start.astimezone(UTC)
        key = key.replace(hour=0) if bucket == "day" else key
        acc = sums.setdefault(key.replace(minute=0, second=0, microsecond=0), [0, 0, 0.0])
        acc[0] += int(count)
        acc[1] += int(rated or 0)
        acc[2] += float(total or 0.0)
    return [
        SeriesPoint(start, count, rated, total)
        for start, (count, rated, total) in sorted(sums.items())
        if count > 0
    ]


def empty_summary() -> FeedbackSummary:
    return FeedbackSummary(0, None, {t.value: 0 for t in tuple(FeedbackType)})


class ClosingContext:
    """
    Makes a store an async context manager that calls its ``aclose()`` on exit.
    """

    async def aclose(self) -> None:
        """
        Release the store's resources; subclasses override it.
        """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def scan_pages(
    query: Callable[..., Awaitable[list[FeedbackItem]]],
    where: FeedbackFilter | None,
    page_size: int,
) -> AsyncIterator[FeedbackItem]:
    """
    Yield every item ``query`` matches, newest first, one keyset page at a time.

    Memory stays at one page whatever the total; items saved during the scan with a
    newer timestamp than the first page are not included (the scan is a snapshot).
    """
    where = check_filter(where)
    check_limit(page_size, "page_size")
    before: Cursor | None = None
    while True:
        page = await query(where, limit=page_size, before=before)
        for item in page:
            yield item
        if len(page) < page_size:
            return
        last = page[-1]
        before = (last.created_at, last.id)
