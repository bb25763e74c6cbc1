"""
The deletion log of the SQL stores: which accepted items a later deletion withdraws.

Every deletion made without a limit is logged (its filter as JSON and the time it was
made, in seconds since the epoch) in the transaction that deletes. A write of accepted
items reads the deletions logged since the oldest of them was accepted and leaves out
each item that one of those made at or after its acceptance matches. Logged deletions
are forgotten after `KEEP_SECONDS`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from ai_feedback._models import FeedbackFilter, FeedbackItem
from ai_feedback.exceptions import FeedbackValidationError

__all__ = ["KEEP_SECONDS", "check_accepted", "last_accepted", "logged", "withdrawn"]

KEEP_SECONDS = 90 * 86_400
"""How long a deletion stays in the log (an item accepted before it and written later
than this is not checked against it)."""

_LOG = logging.getLogger("ai_feedback")
# The field a logged filter is looked up by, most selective first.
_KEYS = ("item_id", "trace_id", "session_id", "owner_id", "model", "provider")


def logged(where: FeedbackFilter) -> tuple[str, float]:
    """
    Return the log row of a deletion made now: its filter as JSON and the time.
    """
    return orjson.dumps(where.to_dict()).decode(), time.time()


def check_accepted(items: Sequence[FeedbackItem], accepted_at: Sequence[float]) -> list[float]:
    """
    Return ``accepted_at`` as a list, one finite time per item.

    Raises:
        FeedbackValidationError: The lengths differ or a time is not a finite number.
    """
    times = list(accepted_at)
    if len(times) != len(items):
        msg = f"must hold one time per item ({len(items)}), not {len(times)}"
        raise FeedbackValidationError("accepted_at", msg, len(times))
    for moment in times:
        if isinstance(moment, bool) or not isinstance(moment, int | float):
            raise FeedbackValidationError("accepted_at", "must be seconds since the epoch", moment)
        if not math.isfinite(moment):
            raise FeedbackValidationError("accepted_at", "must be a finite number", moment)
    return [float(t) for t in times]


def last_accepted(items: Sequence[FeedbackItem], times: Sequence[float]) -> dict[str, float]:
    """
    Return item id -> when it was accepted, the latest time of an id given twice.

    An item sent again after a deletion was accepted after it, whichever copy shares
    the batch.
    """
    out: dict[str, float] = {}
    for item, moment in zip(items, times, strict=True):
        out[item.id] = max(moment, out.get(item.id, moment))
    return out


def withdrawn(
    items: Sequence[FeedbackItem],
    accepted_at: Sequence[float],
    deletions: Iterable[tuple[Any, float]],
) -> set[str]:
    """
    Return the ids of ``items`` a deletion made at or after their acceptance matches.

    ``deletions`` are log rows: the filter (JSON text or the decoded dict) and the time.
    """
    by_key: defaultdict[tuple[str, str], list[tuple[FeedbackFilter, float]]] = defaultdict(list)
    rest: list[tuple[FeedbackFilter, float]] = []
    for criteria, deleted_at in deletions:
        try:
            where = _filter(criteria)
        except (TypeError, ValueError, FeedbackValidationError) as exc:  # not ours to judge
            _LOG.error(
                "A logged deletion cannot be read and is not applied: %r (%s)",
                criteria,
                exc,
                extra={"criteria": str(criteria)[:500]},
            )
            continue
        key = next((k for k in _KEYS if getattr(where, k) is not None), None)
        if key is None:
            rest.append((where, deleted_at))
        else:
            by_key[key, getattr(where, key)].append((where, deleted_at))
    if not by_key and not rest:
        return set()
    out: set[str] = set()
    for item, accepted in zip(items, accepted_at, strict=True):
        candidates = list(rest)
        for key in _KEYS:
            value = item.id if key == "item_id" else item.context.get(key)
            if isinstance(value, str):
                candidates += by_key.get((key, value), ())
        if any(deleted_at >= accepted and w.matches(item) for w, deleted_at in candidates):
            out.add(item.id)
    return out


def _filter(criteria: Any) -> FeedbackFilter:  # noqa: ANN401 - JSON text or its dict
    fields = orjson.loads(criteria) if isinstance(criteria, str | bytes) else criteria
    if not isinstance(fields, dict):
        msg = f"a logged filter must be a JSON object, not {type(fields).__name__}"
        raise TypeError(msg)
    fields = dict(fields)
    for name in ("since", "until"):
        if isinstance(fields.get(name), str):
            fields[name] = datetime.fromisoformat(fields[name])
    return FeedbackFilter(**fields)
