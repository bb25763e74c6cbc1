"""
The records: `FeedbackItem` and its type, and the summaries, statistics and series of stores.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeAlias

from ai_feedback._validation import (
    DEFAULT_LIMITS,
    MAX_ID_LENGTH,
    JSONValue,
    Limits,
    check_id,
    check_item_id,
    check_normalized_length,
    check_payload_size,
    check_score,
    check_text,
    json_copy,
)
from ai_feedback.exceptions import FeedbackValidationError

__all__ = [
    "Cursor",
    "Deleted",
    "DeletionReceipt",
    "Entry",
    "FeedbackFilter",
    "FeedbackItem",
    "FeedbackStats",
    "FeedbackSummary",
    "FeedbackType",
    "SeriesBucket",
    "SeriesPoint",
    "SpoolStatus",
    "Spooled",
    "WriterStatus",
    "new_id",
]

# Context keys that stores index; when present they must be non-blank strings.
INDEXED_CONTEXT_KEYS = ("trace_id", "session_id", "model", "provider", "owner_id")


class FeedbackType(str, Enum):
    """
    The four kinds of feedback.
    """

    RATING = "rating"
    TEXT = "text"
    CORRECTION = "correction"
    LABEL = "label"

    def __str__(self) -> str:
        return self.value


_TYPE_NAMES = ", ".join(repr(t.value) for t in FeedbackType)


def new_id() -> str:
    """
    Return a new time-ordered UUID (version 7) as a string.

    Time-ordered ids keep database indexes local, which makes batched inserts several
    times faster than random uuid4 ids; they are still ordinary UUID strings.
    """
    millis = time.time_ns() // 1_000_000
    # 74 random bits from the process's generator: ids need uniqueness, not secrecy, and
    # os.urandom costs a system call per id. (random reseeds itself in a forked child.)
    rand = _random_bits(74)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | (rand >> 62) << 64 | (rand & (1 << 62) - 1)
    value |= 0x7 << 76  # version 7
    value |= 0x2 << 62  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_random_bits = random.getrandbits


def _now() -> datetime:
    return datetime.now(UTC)


def coerce_type(value: object, field_name: str = "feedback_type") -> FeedbackType:
    """
    Return ``value`` as a `FeedbackType`, accepting the enum or its string value.
    """
    if isinstance(value, FeedbackType):
        return value
    if isinstance(value, str):
        try:
            return FeedbackType(value)
        except ValueError:
            pass
    raise FeedbackValidationError(field_name, f"must be one of {_TYPE_NAMES}", value)


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """
    One piece of feedback: immutable, validated on construction.

    ``value`` depends on the type: a finite number for RATING, a non-blank string for
    TEXT, ``{"original": str, "corrected": str}`` for CORRECTION and
    ``{"label": str, "input": ...}`` for LABEL. ``context`` says what the feedback is
    about (``trace_id``, ``session_id``, ``model``, ``provider`` and ``owner_id`` are
    indexed by stores and must be strings when present); ``metadata`` says where it came
    from. Both are copied, so later changes to the dicts you passed in do not reach the
    item.

    Raises:
        FeedbackValidationError: A field breaks its rule.
    """

    feedback_type: FeedbackType
    value: Any
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        kind = coerce_type(self.feedback_type)
        object.__setattr__(self, "feedback_type", kind)
        object.__setattr__(self, "value", _check_value(kind, self.value))
        object.__setattr__(self, "context", _check_dict("context", self.context))
        object.__setattr__(self, "metadata", _check_dict("metadata", self.metadata))
        for key in INDEXED_CONTEXT_KEYS:
            if key in self.context:
                check_id(f"context.{key}", self.context[key])
        check_item_id("id", self.id)
        object.__setattr__(self, "created_at", check_timestamp(self.created_at))

    @property
    def type(self) -> FeedbackType:
        """
        Alias of ``feedback_type``.
        """
        return self.feedback_type

    @property
    def session_id(self) -> str | None:
        """
        ``context["session_id"]``, or None.
        """
        return self.context.get("session_id")

    @property
    def trace_id(self) -> str | None:
        """
        ``context["trace_id"]``, or None.
        """
        return self.context.get("trace_id")

    @property
    def model(self) -> str | None:
        """
        ``context["model"]``, or None.
        """
        return self.context.get("model")

    @property
    def provider(self) -> str | None:
        """
        ``context["provider"]``, or None.
        """
        return self.context.get("provider")

    @property
    def owner_id(self) -> str | None:
        """
        ``context["owner_id"]`` (the user or tenant the feedback belongs to), or None.
        """
        return self.context.get("owner_id")

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict; `from_dict` turns it back into an equal item.
        """
        return {
            "id": self.id,
            "feedback_type": self.feedback_type.value,
            "value": json_copy("value", self.value),
            "context": json_copy("context", self.context),
            "metadata": json_copy("metadata", self.metadata),
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackItem:
        """
        Build an item from the output of `to_dict`.

        ``created_at`` may be an ISO 8601 string or an aware datetime; ``id`` and
        ``created_at`` are generated when missing.

        Raises:
            FeedbackValidationError: A key is unknown or missing, or a field is invalid.
        """
        if not isinstance(data, Mapping):
            raise FeedbackValidationError("data", "must be a dict", data)
        for key in data:
            if not isinstance(key, str):
                raise FeedbackValidationError("data", "must have string keys only", key)
        unknown = set(data) - _FIELD_NAMES
        if unknown:
            raise FeedbackValidationError(
                next(iter(sorted(unknown))), f"is not a FeedbackItem field ({_FIELD_LIST})"
            )
        for required in ("feedback_type", "value"):
            if required not in data:
                raise FeedbackValidationError(required, "is required")
        kwargs = dict(data)
        created = kwargs.get("created_at")
        if isinstance(created, str):
            try:
                kwargs["created_at"] = datetime.fromisoformat(created)
            except ValueError:
                msg = "must be an ISO 8601 timestamp with a UTC offset"
                raise FeedbackValidationError("created_at", msg, created) from None
        return cls(**kwargs)

    def replace(self, **changes: Any) -> FeedbackItem:  # noqa: ANN401 - any field value
        """
        Return a copy with ``changes`` applied and validated.
        """
        values = {name: getattr(self, name) for name in _FIELD_NAMES}
        values.update(changes)
        return FeedbackItem(**values)

    def check_limits(self, limits: Limits = DEFAULT_LIMITS) -> None:
        """
        Raise `FeedbackTooLargeError` when a text or payload exceeds ``limits``.
        """
        if self.feedback_type is FeedbackType.TEXT:
            check_text("value", self.value, limits=limits)
            check_normalized_length("value", self.value, limits=limits)
        elif self.feedback_type is FeedbackType.CORRECTION:
            for key in ("original", "corrected"):
                check_text(f"value.{key}", self.value[key], limits=limits, allow_blank=True)
        elif self.feedback_type is FeedbackType.LABEL:
            check_text("value.label", self.value["label"], limits=limits)
            check_normalized_length("value.label", self.value["label"], limits=limits)
            check_payload_size("value.input", self.value.get("input"), limits=limits)
        check_payload_limits(self.context, self.metadata, limits)


def check_payload_limits(
    context: Mapping[str, Any], metadata: Mapping[str, Any], limits: Limits
) -> None:
    """
    Raise `FeedbackTooLargeError` when the comment, context or metadata exceeds ``limits``.
    """
    comment = context.get("comment")
    if isinstance(comment, str):
        check_text("context.comment", comment, limits=limits, allow_blank=True)
    check_payload_size("context", context, limits=limits)
    check_payload_size("metadata", metadata, limits=limits)


def trusted_item(  # noqa: PLR0917 - mirrors the field order
    feedback_type: FeedbackType,
    value: Any,  # noqa: ANN401 - depends on the type
    context: dict[str, Any],
    metadata: dict[str, Any],
    item_id: str,
    created_at: datetime,
) -> FeedbackItem:
    """
    Build an item from values a store read back, without validating them again.

    Only for values that were validated when they were stored; it is several times
    faster than the constructor, which matters when reading thousands of rows.
    """
    item = object.__new__(FeedbackItem)
    set_field = object.__setattr__
    set_field(item, "feedback_type", feedback_type)
    set_field(item, "value", value)
    set_field(item, "context", context)
    set_field(item, "metadata", metadata)
    set_field(item, "id", item_id)
    set_field(item, "created_at", created_at)
    return item


def copy_item(item: FeedbackItem) -> FeedbackItem:
    """
    Return a deep copy of ``item`` (its dicts checked as JSON again, not the rest).

    Raises:
        FeedbackValidationError: A dict of the item was changed to hold a non-JSON value.
    """
    return trusted_item(
        item.feedback_type,
        json_copy("value", item.value),
        json_copy("context", item.context),
        json_copy("metadata", item.metadata),
        item.id,
        item.created_at,
    )


_FIELD_NAMES = frozenset(("feedback_type", "value", "context", "metadata", "id", "created_at"))
_FIELD_LIST = ", ".join(sorted(_FIELD_NAMES))
_NO_LIMITS = Limits(max_text_length=2**62, max_payload_chars=2**62)


def _check_dict(name: str, value: object) -> dict[str, JSONValue]:
    if not isinstance(value, Mapping):
        raise FeedbackValidationError(name, "must be a dict", value)
    copied: dict[str, JSONValue] = json_copy(name, value)
    return copied


# Every store can keep these: PostgreSQL turns datetime.min/max into -infinity/infinity.
MIN_CREATED_AT = datetime(1, 1, 2, tzinfo=UTC)
MAX_CREATED_AT = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def check_timestamp(value: object, field_name: str = "created_at") -> datetime:
    """
    Return ``value`` in UTC if it is an aware datetime every store can keep.
    """
    if not isinstance(value, datetime):
        raise FeedbackValidationError(field_name, "must be a datetime", value)
    if value.tzinfo is None or value.utcoffset() is None:
        msg = "must be timezone-aware (use datetime.now(UTC))"
        raise FeedbackValidationError(field_name, msg, value)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_CREATED_AT <= utc <= MAX_CREATED_AT:
        msg = "must be between 0001-01-02 and 9999-12-30 UTC"
        raise FeedbackValidationError(field_name, msg, value)
    return utc


def _check_value(kind: FeedbackType, value: object) -> Any:  # noqa: ANN401 - depends on kind
    if kind is FeedbackType.RATING:
        return check_score("value", value)
    if kind is FeedbackType.TEXT:
        return check_text("value", value, limits=_NO_LIMITS)
    if not isinstance(value, Mapping):
        shape = (
            '{"original": ..., "corrected": ...}'
            if kind is FeedbackType.CORRECTION
            else ('{"label": ..., "input": ...}')
        )
        raise FeedbackValidationError("value", f"must be a dict {shape} for {kind.value}", value)
    copied = json_copy("value", value)
    if kind is FeedbackType.CORRECTION:
        for key in ("original", "corrected"):
            if key not in copied:
                raise FeedbackValidationError(f"value.{key}", "is required for a correction")
            check_text(f"value.{key}", copied[key], limits=_NO_LIMITS, allow_blank=True)
    else:
        if "label" not in copied:
            raise FeedbackValidationError("value.label", "is required for a label")
        check_text("value.label", copied["label"], limits=_NO_LIMITS)
    return copied


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """
    Counts over a time window, as returned by a store's ``aggregate``.

    Args:
        total_count: Items created inside the window.
        average_rating: Mean of the RATING values, or None when there are none.
        count_by_type: Items per type value; every type is present, zero included.
    """

    total_count: int
    average_rating: float | None
    count_by_type: dict[str, int]


@dataclass(frozen=True, slots=True)
class FeedbackStats:
    """
    What an analyst wants from a window of feedback.

    `to_dict` is what ``get_feedback_stats`` returns.

    Args:
        summary: Totals, average rating and counts per type.
        window_hours: The window the figures cover.
        model: The model filter, or None.
        provider: The provider filter, or None.
        rating_count: Number of ratings.
        rating_min: Lowest rating, or None.
        rating_max: Highest rating, or None.
        rating_percentiles: ``p50``, ``p90``, ``p99`` (nearest rank), empty without ratings.
        rating_distribution: Count per distinct rating value, or None when there are
            more than ``DISTRIBUTION_MAX_VALUES`` distinct values.
        by_model: Per model: ``count`` and ``average_rating``.
    """

    summary: FeedbackSummary
    window_hours: float
    model: str | None = None
    provider: str | None = None
    rating_count: int = 0
    rating_min: float | None = None
    rating_max: float | None = None
    rating_percentiles: dict[str, float] = field(default_factory=dict)
    rating_distribution: dict[str, int] | None = None
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict: ``total_count``, ``average_rating``, ``by_type`` first.
        """
        return {
            "total_count": self.summary.total_count,
            "average_rating": self.summary.average_rating,
            "by_type": dict(self.summary.count_by_type),
            "window_hours": self.window_hours,
            "model": self.model,
            "provider": self.provider,
            "rating": {
                "count": self.rating_count,
                "min": self.rating_min,
                "max": self.rating_max,
                "percentiles": dict(self.rating_percentiles),
                "distribution": (
                    None if self.rating_distribution is None else dict(self.rating_distribution)
                ),
            },
            "by_model": {name: dict(row) for name, row in self.by_model.items()},
        }


DISTRIBUTION_MAX_VALUES = 50

SeriesBucket: TypeAlias = Literal["hour", "day"]
"""The width of a time series' buckets: whole UTC hours or whole UTC days."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """
    The items of one bucket of a time series, as a store's ``series`` returns them.

    Args:
        start: The bucket's start (a whole UTC hour or day). The first bucket of a window
            holds only the items at or after the window's start.
        count: Items of every type in the bucket.
        rating_count: Ratings in the bucket.
        rating_sum: The sum of those ratings.
    """

    start: datetime
    count: int
    rating_count: int
    rating_sum: float

    @property
    def average_rating(self) -> float | None:
        """
        The mean rating of the bucket, or None without ratings.
        """
        return self.rating_sum / self.rating_count if self.rating_count else None

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict: ``start``, ``count``, ``rating_count``, ``average_rating``.
        """
        return {
            "start": self.start.isoformat(),
            "count": self.count,
            "rating_count": self.rating_count,
            "average_rating": self.average_rating,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """
    One accepted submission on its way to the store.

    Args:
        item: The item as accepted (before the processor and the steps).
        processor: The key of the processor that will handle it.
        raw_payload: The payload as received, kept when ``store_raw_payloads`` is on.
        accepted_at: When it was accepted (seconds since the epoch): a logged deletion
            made later keeps it out of the store.
        replace: An update: the item replaces the one stored under its id.
    """

    item: FeedbackItem
    processor: str
    raw_payload: Any = None
    accepted_at: float = field(default_factory=time.time)
    replace: bool = False


@dataclass(frozen=True, slots=True)
class Spooled:
    """
    An entry taken from a spool: its mark, the entry, and the spool's own handle.

    ``replayed`` is True when the entry may have been stored already: left by an earlier
    run, or delivered again after a writer died. Steps that are not deterministic can
    then make the stored item differ from this one; the writer does not report that as
    a conflict.
    """

    mark: int
    entry: Entry
    handle: Any = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """
    What a spool holds.

    Args:
        kind: ``memory``, ``sqlite`` or ``nats``.
        location: The path or URL of the spool.
        durable: True when accepted items survive a crash of the process.
        depth: Items accepted and not yet stored (in flight included).
        oldest_age_seconds: Age of the oldest such item, or None when there is none.
        capacity: Most items it holds before submitters get back-pressure.
        dead_letters: Items kept aside because the store or the pipeline refused them.
    """

    kind: str
    location: str
    durable: bool
    depth: int
    oldest_age_seconds: float | None
    capacity: int
    dead_letters: int = 0

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict of the fields.
        """
        return {
            "kind": self.kind,
            "location": self.location,
            "durable": self.durable,
            "depth": self.depth,
            "oldest_age_seconds": self.oldest_age_seconds,
            "capacity": self.capacity,
            "dead_letters": self.dead_letters,
        }


@dataclass(frozen=True, slots=True)
class WriterStatus:
    """
    The state of the path from acknowledgement to the store.

    Args:
        mode: ``durable`` (acknowledged items are on disk), ``queued`` (in memory) or
            ``sync`` (written in the caller's task).
        spool: What the spool holds (None in ``sync`` mode or before the first use).
        store_reachable: Whether the last write reached the store (None before one).
        failing_for_seconds: How long writes have been failing, or None.
        last_error: The last write error, as text.
        accepted: Items this process accepted.
        stored: Items this process's writer stored (replayed ones included).
        failed: Items set aside (refused by the store or the pipeline).
        retries: Write attempts retried.
        withdrawn: Items not stored because a deletion made after they were accepted
            matches them (see `SupportsDeletionLog`).
    """

    mode: str
    spool: SpoolStatus | None = None
    store_reachable: bool | None = None
    failing_for_seconds: float | None = None
    last_error: str | None = None
    accepted: int = 0
    stored: int = 0
    failed: int = 0
    retries: int = 0
    withdrawn: int = 0

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict of the fields.
        """
        return {
            "mode": self.mode,
            "spool": None if self.spool is None else self.spool.to_dict(),
            "store_reachable": self.store_reachable,
            "failing_for_seconds": self.failing_for_seconds,
            "last_error": self.last_error,
            "accepted": self.accepted,
            "stored": self.stored,
            "failed": self.failed,
            "retries": self.retries,
            "withdrawn": self.withdrawn,
        }


Cursor: TypeAlias = tuple[datetime, str]
"""A position in newest-first order: the ``created_at`` and ``id`` of the last item read."""


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """
    Which items a query returns: every field that is set must match.

    Args:
        item_id: Only the item with this id.
        feedback_type: Only items of this type.
        model: Only items whose ``context["model"]`` is this.
        provider: Only items whose ``context["provider"]`` is this.
        session_id: Only items of this session.
        trace_id: Only items about this trace.
        owner_id: Only items of this owner (tenant, project).
        since: Only items created at or after this (aware) time.
        until: Only items created before this (aware) time.

    Raises:
        FeedbackValidationError: A field breaks its rule (names it).
    """

    feedback_type: FeedbackType | None = None
    model: str | None = None
    provider: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    owner_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    item_id: str | None = None

    def __post_init__(self) -> None:
        if self.item_id is not None:
            check_id("item_id", self.item_id)
        if self.feedback_type is not None:
            object.__setattr__(self, "feedback_type", coerce_type(self.feedback_type))
        for key in INDEXED_CONTEXT_KEYS:
            value = getattr(self, key)
            if value is not None:
                check_id(key, value)
        for key in ("since", "until"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, check_timestamp(value, key))
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise FeedbackValidationError(
                "until", "must be later than since (the window would hold nothing)", self.until
            )

    def is_empty(self) -> bool:
        """
        Return True when the filter sets nothing (it matches every item).
        """
        return self == FeedbackFilter()

    def to_dict(self) -> dict[str, Any]:
        """
        Return the fields that are set, JSON-ready.
        """
        shown: dict[str, Any] = {}
        for name in (
            "item_id",
            "feedback_type",
            *INDEXED_CONTEXT_KEYS,
            "since",
            "until",
        ):
            value = getattr(self, name)
            if isinstance(value, FeedbackType):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            if value is not None:
                shown[name] = value
        return shown

    def context_filters(self) -> dict[str, str]:
        """
        Return the indexed context keys this filter fixes, and their values.
        """
        return {k: v for k in INDEXED_CONTEXT_KEYS if (v := getattr(self, k)) is not None}

    def matches(self, item: FeedbackItem) -> bool:
        """
        Return whether ``item`` passes every set field.
        """
        if self.item_id is not None and item.id != self.item_id:
            return False
        if self.feedback_type is not None and item.feedback_type is not self.feedback_type:
            return False
        if self.since is not None and item.created_at < self.since:
            return False
        if self.until is not None and item.created_at >= self.until:
            return False
        context = item.context
        return all(context.get(k) == v for k, v in self.context_filters().items())


def check_cursor(before: object) -> Cursor | None:
    """
    Return ``before`` if it is None or a (aware datetime, id) pair.
    """
    if before is None:
        return None
    if not isinstance(before, tuple) or len(before) != 2:  # noqa: PLR2004 - a pair
        raise FeedbackValidationError("before", "must be a (created_at, id) pair", before)
    return check_timestamp(before[0], "before"), check_id("before", before[1])


def checked_item(  # noqa: PLR0917 - mirrors the field order, like trusted_item
    kind: FeedbackType,
    value: Any,  # noqa: ANN401 - validated by the caller for ``kind``
    context: Mapping[str, Any],
    metadata: Mapping[str, Any],
    item_id: str | None = None,
    created_at: datetime | None = None,
    *,
    copied: bool = False,
) -> FeedbackItem:
    """
    Build an item whose ``value``, ``item_id`` and ``created_at`` the caller validated.

    ``context`` and ``metadata`` are validated and copied here, once (the constructor
    would check everything again); with ``copied``, they are copies `json_copy` made
    and only the indexed context keys are checked.

    Raises:
        FeedbackValidationError: ``context`` or ``metadata`` breaks a rule.
    """
    if not copied:
        context = _check_dict("context", context)
        metadata = _check_dict("metadata", metadata)
    for key in INDEXED_CONTEXT_KEYS:
        if key in context:
            found = context[key]
            # json_copy refused bad characters already; the rest of check_id, inline.
            if type(found) is not str or len(found) > MAX_ID_LENGTH or not found.strip():
                check_id(f"context.{key}", found)
    return trusted_item(
        kind,
        value,
        context,  # type: ignore[arg-type]
        metadata,  # type: ignore[arg-type]
        item_id if item_id is not None else new_id(),
        created_at if created_at is not None else _now(),
    )


@dataclass(frozen=True, slots=True)
class Deleted:
    """
    What a store's ``delete`` removed.

    Args:
        items: Feedback items.
        raw_payloads: Raw payloads kept with them.
        cache_entries: Cached entries dropped (a caching store).
        rollup_rows: Rows of the statistics rollup the items were taken out of (a
            database store; emptied rows are removed).
    """

    items: int
    raw_payloads: int = 0
    cache_entries: int = 0
    rollup_rows: int = 0


@dataclass(frozen=True, slots=True)
class DeletionReceipt:
    """
    The record of a deletion: what was matched, what was removed from where, and when.

    Args:
        criteria: The filter's fields (``to_dict`` of the `FeedbackFilter`).
        items: Feedback items removed from the store.
        raw_payloads: Raw payloads removed with them.
        captures: Captured operations removed (joined to the items by trace).
        cache_entries: Cached entries dropped.
        dead_letters: Set-aside items removed from the spool's dead letters.
        deleted_at: When the deletion finished (UTC).
        rollup_rows: Rows of the statistics rollup the items were taken out of.
    """

    criteria: dict[str, Any]
    items: int
    raw_payloads: int
    captures: int
    cache_entries: int
    dead_letters: int
    deleted_at: datetime
    rollup_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict of the receipt.
        """
        return {
            "criteria": dict(self.criteria),
            "removed": {
                "items": self.items,
                "raw_payloads": self.raw_payloads,
                "captures": self.captures,
                "cache_entries": self.cache_entries,
                "dead_letters": self.dead_letters,
                "rollup_rows": self.rollup_rows,
            },
            "deleted_at": self.deleted_at.isoformat(),
        }
