"""
What happens to an accepted item before it is stored: a processor, then the steps.

Each item is dispatched to one processor by key: the item's type (``"rating"``,
``"text"``, ``"correction"``, ``"label"``) unless the submitter named another key
(``collect_text(..., processor="sentiment")``). The built-in processors check that the
item has their type and normalize text (Unicode NFC, surrounding whitespace stripped);
register your own under a new key, or replace a built-in with ``replace=True``.

Then the steps run in the order they were added. A step receives the item and returns
it, changed or not (``item.replace(...)``), or raises `RejectFeedback` with a reason.
Steps and processors may be sync or async. A step or processor that raises anything
else becomes a `FeedbackProcessingError` naming it; a rejection becomes a
`FeedbackRejectedError`. Neither may change the item's id or type.
"""

from __future__ import annotations

import asyncio
import inspect
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias

from ai_feedback._models import FeedbackItem, FeedbackType
from ai_feedback._validation import DEFAULT_LIMITS, Limits, check_id
from ai_feedback.exceptions import (
    FeedbackProcessingError,
    FeedbackRejectedError,
    FeedbackValidationError,
    RejectFeedback,
)

__all__ = ["FeedbackProcessor", "Pipeline", "ProcessorRegistry", "Step"]

Step: TypeAlias = Callable[[FeedbackItem], "FeedbackItem | Awaitable[FeedbackItem]"]
"""A sync or async callable that returns the (possibly changed) item or raises
`RejectFeedback`."""


class FeedbackProcessor(Protocol):
    """
    **Protocol:** handles the items dispatched to its key.
    """

    def __call__(self, item: FeedbackItem) -> FeedbackItem | Awaitable[FeedbackItem]:
        """
        Return the processed item (sync or async).
        """
        ...


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


# The built-in processors of these types return every item of their type unchanged.
_UNCHANGED_KINDS = frozenset({FeedbackType.RATING, FeedbackType.CORRECTION})


class _BuiltinProcessor:
    """
    The default processor of one type: checks the type and normalizes text.
    """

    def __init__(self, kind: FeedbackType) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<builtin {self.kind.value} processor>"

    def keeps(self, item: FeedbackItem) -> bool:
        """
        Return whether this processor would return ``item`` itself, unchanged.
        """
        return item.feedback_type is self.kind and self.kind in _UNCHANGED_KINDS

    def __call__(self, item: FeedbackItem) -> FeedbackItem:
        if item.feedback_type is not self.kind:
            msg = f"expects {self.kind.value} feedback, got {item.feedback_type.value}"
            raise ValueError(msg)
        if self.kind is FeedbackType.TEXT:
            text = _nfc(item.value)
            return item if text == item.value else item.replace(value=text)
        if self.kind is FeedbackType.LABEL:
            label = _nfc(item.value["label"])
            if label != item.value["label"]:
                return item.replace(value={**item.value, "label": label})
        return item


class ProcessorRegistry:
    """
    Processors by key; one built-in processor per feedback type is registered.
    """

    def __init__(self) -> None:
        self._processors: dict[str, FeedbackProcessor] = {
            kind.value: _BuiltinProcessor(kind) for kind in FeedbackType
        }

    def __repr__(self) -> str:
        return f"<ProcessorRegistry keys={sorted(self._processors)}>"

    def __contains__(self, key: object) -> bool:
        return key in self._processors

    def keys(self) -> list[str]:
        """
        Return the registered keys, sorted.
        """
        return sorted(self._processors)

    def register(self, key: str, processor: FeedbackProcessor, *, replace: bool = False) -> None:
        """
        Register ``processor`` under ``key``.

        Raises:
            FeedbackValidationError: ``key`` is blank, ``processor`` is not callable, or
                ``key`` is taken and ``replace`` is False.
        """
        check_id("key", key)
        if not callable(processor):
            raise FeedbackValidationError("processor", "must be callable", processor)
        if key in self._processors and not replace:
            msg = "is already registered; pass replace=True to replace it"
            raise FeedbackValidationError("key", msg, key)
        self._processors[key] = processor

    def get(self, key: str) -> FeedbackProcessor:
        """
        Return the processor registered under ``key``.

        Raises:
            FeedbackValidationError: No processor has that key.
        """
        try:
            return self._processors[key]
        except (KeyError, TypeError):
            known = ", ".join(repr(k) for k in self.keys())
            msg = f"names no registered processor (known: {known})"
            raise FeedbackValidationError("processor", msg, key) from None


class Pipeline:
    """
    The processors and the ordered steps an item goes through before storage.

    Args:
        processors: The registry to dispatch from; a new one with the built-ins by default.
        limits: Size limits re-checked after the steps, which may have enlarged the item;
            by default those of the first collector given this pipeline (the built-in
            limits until then).
    """

    def __init__(
        self, processors: ProcessorRegistry | None = None, *, limits: Limits | None = None
    ) -> None:
        self.processors = processors if processors is not None else ProcessorRegistry()
        self._steps: list[tuple[str, Step]] = []
        self._limits = limits

    @property
    def limits(self) -> Limits:
        """
        The size limits checked after the steps.
        """
        return self._limits if self._limits is not None else DEFAULT_LIMITS

    def adopt_limits(self, limits: Limits) -> None:
        """
        Check ``limits`` after the steps, unless this pipeline was given its own.
        """
        if self._limits is None:
            self._limits = limits

    def __repr__(self) -> str:
        return f"<Pipeline steps={[name for name, _ in self._steps]} {self.processors!r}>"

    @property
    def steps(self) -> list[str]:
        """
        The names of the steps, in order.
        """
        return [name for name, _ in self._steps]

    def add_step(self, step: Step, *, name: str | None = None) -> None:
        """
        Append ``step`` to the chain; ``name`` defaults to the callable's name.

        Raises:
            FeedbackValidationError: ``step`` is not callable or the name is taken.
        """
        if not callable(step):
            raise FeedbackValidationError("step", "must be callable", step)
        step_name = name if name is not None else _callable_name(step)
        check_id("name", step_name)
        if step_name in self.steps:
            raise FeedbackValidationError("name", "is already used by another step", step_name)
        self._steps.append((step_name, step))

    def remove_step(self, name: str) -> None:
        """
        Remove the step called ``name``.

        Raises:
            FeedbackValidationError: There is no such step.
        """
        if name not in self.steps:
            raise FeedbackValidationError("name", "names no step of this pipeline", name)
        self._steps = [(n, s) for n, s in self._steps if n != name]

    def resolve_processor(self, key: str | None, item: FeedbackItem) -> str:
        """
        Return the processor key for ``item``: ``key`` or the item's type.

        Raises:
            FeedbackValidationError: ``key`` names no registered processor, or names the
                built-in processor of another type.
        """
        chosen = item.feedback_type.value if key is None else key
        processor = self.processors.get(chosen)
        if isinstance(processor, _BuiltinProcessor) and processor.kind is not item.feedback_type:
            kind = item.feedback_type.value
            msg = (
                f"names the built-in processor of {processor.kind.value} feedback, which "
                f"cannot handle {kind} feedback; leave it out or name a processor for {kind}"
            )
            raise FeedbackValidationError("processor", msg, key)
        return chosen

    async def run(self, item: FeedbackItem, processor: str) -> FeedbackItem:
        """
        Run the processor ``processor`` then every step on ``item``.

        Raises:
            FeedbackRejectedError: A step rejected the item.
            FeedbackProcessingError: The processor or a step raised, or returned
                something other than the same item.
        """
        chosen = self.processors.get(processor)
        if not self._steps and type(chosen) is _BuiltinProcessor and chosen.keeps(item):
            return item  # the common case: nothing would change the item
        original = item
        item = await _call(f"processor {processor!r}", chosen, item)
        for name, step in self._steps:
            item = await _call(name, step, item)
        # The caller checked the item it submitted; a step or a processor of the
        # application may have changed it, in place too.
        if item is not original or self._steps or type(chosen) is not _BuiltinProcessor:
            item.check_limits(self.limits)
        return item


async def _call(name: str, fn: Callable[[FeedbackItem], Any], item: FeedbackItem) -> FeedbackItem:
    try:
        result = fn(item)
        if inspect.isawaitable(result):
            result = await result
    except RejectFeedback as signal:
        raise FeedbackRejectedError(name, signal.reason) from None
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # this task is being cancelled: let it
            raise
        raise FeedbackProcessingError(name, f"raised {exc!r}") from exc  # e.g. a shared task's
    except Exception as exc:
        raise FeedbackProcessingError(name, f"raised {exc!r}") from exc
    if not isinstance(result, FeedbackItem):
        msg = f"returned {type(result).__name__}, expected a FeedbackItem"
        raise FeedbackProcessingError(name, msg)
    if result.id != item.id or result.feedback_type is not item.feedback_type:
        msg = "changed the item's id or type; use item.replace() for other fields"
        raise FeedbackProcessingError(name, msg)
    return result


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)
