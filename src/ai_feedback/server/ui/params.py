"""
The dashboard's query parameters: read, checked, and written back into links.

Every filter lives in the URL, so a view can be bookmarked and shared. A bad value
raises `BadParameterError` naming the parameter; the page answers 422 with that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from ai_feedback._models import Cursor, FeedbackFilter, SeriesBucket
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.server.native import decode_cursor

__all__ = [
    "MAX_WINDOW_HOURS",
    "SORTS",
    "TYPES",
    "WINDOWS",
    "BadParameterError",
    "ListQuery",
    "OverviewQuery",
    "decoded_cursor",
    "hours_text",
]

TYPES = ("rating", "text", "correction", "label")
WINDOWS = {1: "1 hour", 6: "6 hours", 24: "24 hours", 168: "7 days", 720: "30 days"}
"""The windows the overview offers (any other number of hours up to a year works too)."""
MAX_WINDOW_HOURS = 8784
"""The longest window the overview shows: a leap year, at most 367 day buckets."""
SORTS = ("model", "count", "average_rating")
_HOURLY_UP_TO = 72  # longer windows are shown per day
_TEXT_MAX = 256
_CURSOR_MAX = 4096  # base64 of JSON holding an id of up to 256 characters, escaped


class BadParameterError(ValueError):
    """
    A query parameter of a dashboard page is invalid.

    Args:
        field: The parameter.
        rule: What it must be.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"The {field!r} parameter {rule}.")


def _text(params: Mapping[str, str], name: str, longest: int = _TEXT_MAX) -> str | None:
    """
    The parameter as given (a model may be named "  padded  "); blank is unset.
    """
    value = params.get(name, "")
    if not value.strip():
        return None
    if len(value) > longest:
        raise BadParameterError(name, f"must be at most {longest} characters")
    return value


def _word(params: Mapping[str, str], name: str, longest: int = _TEXT_MAX) -> str | None:
    """
    The parameter without surrounding spaces: a number, a time, a cursor or a keyword.
    """
    value = _text(params, name, longest)
    return None if value is None else value.strip()


def hours_text(hours: float) -> str:
    """
    ``hours`` as a URL or a page shows it: exact (``0.125``, ``100.1234567``, ``24``).
    """
    return str(int(hours)) if hours.is_integer() else repr(hours)


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _word(params, name)
    if value is not None and value not in allowed:
        raise BadParameterError(name, f"must be one of {', '.join(allowed)}")
    return value


def _moment(params: Mapping[str, str], name: str) -> datetime | None:
    value = _word(params, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        rule = "must be a date and time in ISO 8601, such as 2026-11-30T14:00 (UTC if no offset)"
        raise BadParameterError(name, rule) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _link(values: Mapping[str, object]) -> str:
    """The query string of the set values (empty values are left out)."""
    shown = {k: str(v) for k, v in values.items() if v not in (None, "")}
    return f"?{urlencode(shown)}" if shown else ""


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    """
    The overview's filters: a window ending now, model, provider, type, and the table's sort.
    """

    window: float = 24.0
    model: str | None = None
    provider: str | None = None
    type: str | None = None
    bucket: SeriesBucket = "hour"
    sort: str = "count"
    order: Literal["asc", "desc"] = "desc"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> OverviewQuery:
        """
        Read the overview's parameters.

        Raises:
            BadParameterError: A parameter is invalid (named).
        """
        window = 24.0
        raw = _word(params, "window")
        if raw is not None:
            try:
                window = float(raw)
            except ValueError:
                raise BadParameterError("window", "must be a number of hours") from None
            if not 0 < window <= MAX_WINDOW_HOURS:  # NaN fails too
                raise BadParameterError("window", f"must be between 0 and {MAX_WINDOW_HOURS} hours")
        default_bucket = "hour" if window <= _HOURLY_UP_TO else "day"
        bucket = _choice(params, "bucket", ("hour", "day")) or default_bucket
        if bucket == "hour" and window > _HOURLY_UP_TO * 10:
            raise BadParameterError("bucket", "must be 'day' for windows past 720 hours")
        model, provider = _text(params, "model"), _text(params, "provider")
        _check_ids(model=model, provider=provider)
        return cls(
            window=window,
            model=model,
            provider=provider,
            type=_choice(params, "type", TYPES),
            bucket="day" if bucket == "day" else "hour",
            sort=_choice(params, "sort", SORTS) or "count",
            order="asc" if _choice(params, "order", ("asc", "desc")) == "asc" else "desc",
        )

    def link(self, **changes: object) -> str:
        """
        Return the query string of this view with ``changes`` (defaults left out).
        """
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        values["window"] = hours_text(float(str(values["window"])))
        for name, default in (("window", "24"), ("sort", "count"), ("order", "desc")):
            if str(values[name]) == default:
                values[name] = None
        default_bucket = "hour" if float(str(values["window"] or 24)) <= _HOURLY_UP_TO else "day"
        if values["bucket"] == default_bucket or "window" in changes:
            values["bucket"] = None
        return _link(values)

    def buckets(self, now: datetime) -> list[datetime]:
        """
        Return the start of every bucket of the window, oldest first.
        """
        step = timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1)
        since = now - timedelta(hours=self.window)
        start = since.replace(minute=0, second=0, microsecond=0)
        if self.bucket == "day":
            start = start.replace(hour=0)
        starts = []
        while start <= now:
            starts.append(start)
            start += step
        return starts


@dataclass(frozen=True, slots=True)
class ListQuery:
    """
    The feedback list's filters and the page it shows.
    """

    type: str | None = None
    model: str | None = None
    provider: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """
        Read the list's parameters.

        Raises:
            BadParameterError: A parameter is invalid (named).
        """
        since, until = _moment(params, "since"), _moment(params, "until")
        if since is not None and until is not None and until <= since:
            raise BadParameterError("until", "must be later than 'since'")
        found = cls(
            type=_choice(params, "type", TYPES),
            model=_text(params, "model"),
            provider=_text(params, "provider"),
            session_id=_text(params, "session_id"),
            trace_id=_text(params, "trace_id"),
            since=since,
            until=until,
            cursor=_word(params, "cursor", _CURSOR_MAX),
        )
        _check_ids(
            model=found.model,
            provider=found.provider,
            session_id=found.session_id,
            trace_id=found.trace_id,
            since=found.since,
            until=found.until,
        )
        return found

    def where(self, owner_id: str) -> FeedbackFilter:
        """
        Return the store filter of this view, limited to ``owner_id``.
        """
        return FeedbackFilter(
            feedback_type=self.type,  # type: ignore[arg-type]
            model=self.model,
            provider=self.provider,
            session_id=self.session_id,
            trace_id=self.trace_id,
            owner_id=owner_id,
            since=self.since,
            until=self.until,
        )

    def link(self, **changes: object) -> str:
        """
        Return the query string of this view with ``changes`` (the cursor is dropped).
        """
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        values["cursor"] = None
        values.update(changes)
        for name in ("since", "until"):
            moment = values[name]
            if isinstance(moment, datetime):
                values[name] = moment.isoformat()
        return _link(values)

    def filters(self) -> dict[str, str]:
        """
        Return the set filters as text, for the form's fields.
        """
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "cursor" and value is not None:
                shown[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return shown


def _check_ids(**values: str | datetime | None) -> None:
    """Apply the store's rules (ids without control characters, dates in range) to filters."""
    try:
        FeedbackFilter(**values)  # type: ignore[arg-type]
    except FeedbackValidationError as exc:
        raise BadParameterError(exc.field, exc.rule) from None


def decoded_cursor(cursor: str | None) -> Cursor | None:
    """
    Return the position of a list cursor, or None.

    Raises:
        BadParameterError: The cursor was not made by this service.
    """
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except FeedbackValidationError:
        raise BadParameterError("cursor", "is not a cursor this service returned") from None
