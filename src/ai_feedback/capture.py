"""
Capturing what an operation received and produced, to join it to feedback later.

`FeedbackContext` (and the ASGI middleware in `ai_feedback.asgi`) record an operation's
name, input, output, error and duration in a `CaptureStore` under a context id. Feedback
whose ``trace_id`` equals that id gets the capture in ``context["captured"]`` when it is
submitted, so a thumbs-down arrives together with the prompt and the answer it judges.

The store is bounded: at most ``max_entries`` captures (the oldest are dropped first)
and each is kept ``max_age_seconds``. Inputs and outputs are converted to JSON values
(anything else becomes its ``repr``) and cut to ``max_chars`` characters each.
"""

from __future__ import annotations

import contextvars
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import orjson

from ai_feedback._models import new_id
from ai_feedback._validation import check_id, json_copy
from ai_feedback.exceptions import FeedbackValidationError

__all__ = ["Capture", "CaptureStore", "FeedbackContext", "current_context_id"]

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ai_feedback_context_id", default=None
)


def current_context_id() -> str | None:
    """
    Return the context id of the innermost active `FeedbackContext` or captured request.
    """
    return _current.get()


@dataclass(frozen=True, slots=True)
class Capture:
    """
    What one operation received and produced.

    Args:
        context_id: The id feedback refers to (as its ``trace_id``).
        name: The operation, e.g. ``"summarize"`` or ``"POST /chat"``.
        input: What it received, as a JSON value.
        output: What it produced, as a JSON value.
        error: ``repr`` of the exception it raised, or None.
        started_at: When it started (UTC).
        duration_ms: How long it took.
        extra: Anything else the capturer recorded (e.g. an HTTP status).
    """

    context_id: str
    name: str
    input: Any = None
    output: Any = None
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """
        Return the capture as the JSON object joined into feedback context.
        """
        return {
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            **({"extra": self.extra} if self.extra else {}),
        }


class CaptureStore:
    """
    Recent captures by context id, bounded by count and age.

    Args:
        max_entries: Most captures kept; the oldest are dropped first.
        max_age_seconds: How long a capture stays joinable.
        max_chars: Longest serialized input or output kept, in characters.
    """

    def __init__(
        self, *, max_entries: int = 10_000, max_age_seconds: float = 3600, max_chars: int = 8_000
    ) -> None:
        for name, value in (
            ("max_entries", max_entries),
            ("max_age_seconds", max_age_seconds),
            ("max_chars", max_chars),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise FeedbackValidationError(name, "must be a positive number", value)
        self.max_entries = int(max_entries)
        self.max_age_seconds = float(max_age_seconds)
        self.max_chars = int(max_chars)
        self._entries: OrderedDict[str, tuple[float, Capture]] = OrderedDict()
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<CaptureStore entries={len(self._entries)} max_entries={self.max_entries}>"

    def __len__(self) -> int:
        self._expire(time.monotonic())
        return len(self._entries)

    def record(self, capture: Capture) -> None:
        """
        Keep ``capture`` (replacing one with the same id), dropping the oldest if full.
        """
        now = time.monotonic()
        self._expire(now)
        self._entries.pop(capture.context_id, None)
        self._entries[capture.context_id] = (now, capture)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.dropped += 1

    def get(self, context_id: str) -> Capture | None:
        """
        Return the capture recorded under ``context_id`` if it has not expired.
        """
        entry = self._entries.get(context_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.max_age_seconds:
            del self._entries[context_id]
            return None
        return entry[1]

    def discard(self, context_id: str) -> bool:
        """
        Forget the capture recorded under ``context_id``; return whether there was one.
        """
        return self._entries.pop(context_id, None) is not None

    def bounded(self, value: object) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return ``value`` as a JSON value of at most ``max_chars`` serialized characters.

        A longer one becomes text of at most ``max_chars`` characters (its own, or its
        JSON): its start and a note of how many characters were cut.
        """
        try:
            safe = json_copy("value", value)
        except FeedbackValidationError:
            safe = repr(value)
        text = orjson.dumps(safe).decode()
        if len(text) <= self.max_chars:
            return safe
        shown = safe if isinstance(safe, str) else text
        kept = self.max_chars - len(f"... [truncated {len(shown)} chars]")  # room for the note
        return shown[:kept] + f"... [truncated {len(shown) - kept} chars]"

    def _expire(self, now: float) -> None:
        while self._entries:
            stamp, _ = next(iter(self._entries.values()))
            if now - stamp <= self.max_age_seconds:
                return
            self._entries.popitem(last=False)


class FeedbackContext:
    """
    An async context manager that captures one operation for later feedback.

    ::

        async with FeedbackContext(captures, "summarize", input=prompt) as ctx:
            ctx.output = await llm(prompt)
        await feedback.submit_feedback(trace_id=ctx.context_id, score=1)

    An exception raised inside the block is recorded (as its ``repr``) and re-raised.
    `FeedbackCollector.context` builds one bound to the collector's capture store.

    Args:
        captures: Where the capture is kept.
        name: The operation's name.
        input: What the operation received.
        context_id: The id to capture under; a new UUID by default.
    """

    def __init__(
        self,
        captures: CaptureStore,
        name: str,
        *,
        input: Any = None,  # noqa: A002, ANN401 - mirrors the captured field
        context_id: str | None = None,
    ) -> None:
        if not isinstance(captures, CaptureStore):
            raise FeedbackValidationError("captures", "must be a CaptureStore", captures)
        self.name = check_id("name", name)
        self.context_id = new_id() if context_id is None else check_id("context_id", context_id)
        self.input = input
        self.output: Any = None
        self.extra: dict[str, Any] = {}
        self._captures = captures
        self._started = 0.0
        self._started_at = datetime.now(UTC)
        self._token: contextvars.Token[str | None] | None = None

    def __repr__(self) -> str:
        return f"<FeedbackContext {self.name!r} context_id={self.context_id!r}>"

    async def __aenter__(self) -> Self:
        self._started = time.perf_counter()
        self._started_at = datetime.now(UTC)
        self._token = _current.set(self.context_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        captures = self._captures
        captures.record(
            Capture(
                context_id=self.context_id,
                name=self.name,
                input=captures.bounded(self.input),
                output=captures.bounded(self.output),
                error=None if exc is None else repr(exc)[: captures.max_chars],
                started_at=self._started_at,
                duration_ms=(time.perf_counter() - self._started) * 1000,
                extra=_as_object(captures.bounded(self.extra)) if self.extra else {},
            )
        )


def _as_object(value: object) -> dict[str, Any]:
    # A bounded value that had to be cut is a string; keep it under one key.
    return value if isinstance(value, dict) else {"value": value}
