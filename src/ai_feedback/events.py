"""
Events the feedback pipeline publishes, and the bus that delivers them.

For one accepted item the events come in this order:

1. `FeedbackSubmitted` — in the caller's task, right after validation and before the
   item is queued or processed; carries the item as submitted and the raw payload.
2. `FeedbackProcessed` — after the processor and the steps ran; carries the item as it
   will be stored and the processor key used.
3. `FeedbackStored` — after the store confirmed the write; carries the stored item.

An item that cannot be stored (rejected by a step, a step or processor raised, or the
store kept failing) produces `FeedbackFailed` instead of the later events.

Subscribers may be sync or async callables taking the event. A subscriber that raises is
logged on the ``ai_feedback`` logger; the item and the other subscribers are unaffected.
Subscribers run in order of subscription and should treat the event as read-only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from ai_feedback._models import FeedbackItem
from ai_feedback.exceptions import FeedbackValidationError

__all__ = [
    "EventBus",
    "FeedbackEvent",
    "FeedbackFailed",
    "FeedbackProcessed",
    "FeedbackStored",
    "FeedbackSubmitted",
    "Subscriber",
]

_LOG = logging.getLogger("ai_feedback")


@dataclass(frozen=True, slots=True)
class FeedbackSubmitted:
    """
    An item passed validation and was accepted.

    Args:
        item: The item as submitted.
        raw_payload: The call's arguments exactly as received.
    """

    item: FeedbackItem
    raw_payload: Any


@dataclass(frozen=True, slots=True)
class FeedbackProcessed:
    """
    An item went through its processor and the steps.

    Args:
        item: The item as it will be stored.
        processor: The key of the processor that handled it.
    """

    item: FeedbackItem
    processor: str


@dataclass(frozen=True, slots=True)
class FeedbackStored:
    """
    The store confirmed the write of ``item``.
    """

    item: FeedbackItem


@dataclass(frozen=True, slots=True)
class FeedbackFailed:
    """
    An accepted item will not be stored.

    Args:
        item: The item as it was when it failed.
        stage: ``"processing"`` (a processor or step raised or rejected it),
            ``"storage"`` (the store kept failing) or ``"accept"`` (the spool did not
            take it, full or unreachable: the submitter got the error; not kept in
            ``failures``).
        error: What went wrong.
        attempts: Store attempts made (0 when processing failed).
    """

    item: FeedbackItem
    stage: str
    error: BaseException
    attempts: int


FeedbackEvent: TypeAlias = FeedbackSubmitted | FeedbackProcessed | FeedbackStored | FeedbackFailed
"""Any event the pipeline publishes."""

E = TypeVar("E", FeedbackSubmitted, FeedbackProcessed, FeedbackStored, FeedbackFailed)

Subscriber: TypeAlias = Callable[[Any], Awaitable[None] | None]
"""A sync or async callable that receives one event."""

_EVENT_TYPES = (FeedbackSubmitted, FeedbackProcessed, FeedbackStored, FeedbackFailed)


class EventBus:
    """
    Delivers pipeline events to subscribers, isolating their failures.
    """

    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = {t: [] for t in _EVENT_TYPES}

    def __repr__(self) -> str:
        total = sum(len(s) for s in self._subscribers.values())
        return f"<EventBus subscribers={total}>"

    def subscribe(self, event_type: type[E], subscriber: Callable[[E], Any]) -> None:
        """
        Call ``subscriber(event)`` for every event of ``event_type``.

        Raises:
            FeedbackValidationError: ``event_type`` is not an event class or
                ``subscriber`` is not callable.
        """
        if event_type not in self._subscribers:
            names = ", ".join(t.__name__ for t in _EVENT_TYPES)
            raise FeedbackValidationError("event_type", f"must be one of {names}", event_type)
        if not callable(subscriber):
            raise FeedbackValidationError("subscriber", "must be callable", subscriber)
        self._subscribers[event_type].append(subscriber)

    def unsubscribe(self, event_type: type[E], subscriber: Callable[[E], Any]) -> None:
        """
        Stop calling ``subscriber``; unknown subscribers are ignored.
        """
        subscribers = self._subscribers.get(event_type, [])
        if subscriber in subscribers:
            subscribers.remove(subscriber)

    def has_subscribers(self, event_type: type) -> bool:
        """
        Return True when ``event_type`` has at least one subscriber.
        """
        return bool(self._subscribers.get(event_type))

    async def publish(self, event: FeedbackEvent) -> None:
        """
        Deliver ``event`` to each subscriber in turn; failures are logged, never raised.
        """
        for subscriber in tuple(self._subscribers[type(event)]):
            try:
                result = subscriber(event)
                if inspect.isawaitable(result):
                    await result
            except BaseException:  # a subscriber must never lose the item
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                _LOG.exception(
                    "Feedback event subscriber %r failed on %s for item %s",
                    subscriber,
                    type(event).__name__,
                    event.item.id,
                    extra={"event": type(event).__name__, "item_id": event.item.id},
                )
