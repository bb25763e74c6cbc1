"""
Every exception ai-feedback raises.

The tree::

    FeedbackError
    ├── FeedbackValidationError      bad input; nothing was stored
    │   └── FeedbackTooLargeError    a text or payload over its size limit
    ├── FeedbackProcessingError      a processor or pipeline step failed
    │   └── FeedbackRejectedError    a step rejected the item on purpose
    ├── FeedbackAuthorizationError   an ``authorize`` callback denied a submission
    ├── FeedbackStorageError         a store could not read or write
    │   ├── FeedbackConflictError    another item is already stored under that id
    │   └── FeedbackOverloadedError  the spool is full; retry after ``retry_after`` seconds
    ├── FeedbackConfigurationError   a misspelled key or a wrongly typed value
    ├── ResolutionError              the container could not build a type
    └── UnwrapError                  ``unwrap()`` on the wrong side of a Result

    RejectFeedback (BaseException)   raised by a step to reject an item; a signal, not an error

This module imports nothing from the package so that every other module can use it.
"""

from __future__ import annotations

import reprlib

__all__ = [
    "FeedbackAuthorizationError",
    "FeedbackConfigurationError",
    "FeedbackConflictError",
    "FeedbackError",
    "FeedbackOverloadedError",
    "FeedbackProcessingError",
    "FeedbackRejectedError",
    "FeedbackStorageError",
    "FeedbackTooLargeError",
    "FeedbackValidationError",
    "RejectFeedback",
    "ResolutionError",
    "UnwrapError",
]


_NOT_SHOWN: object = object()
_SHOWN_IDS = 5


class FeedbackError(Exception):
    """
    Base class of every error raised by ai-feedback.
    """


class FeedbackValidationError(FeedbackError, ValueError):
    """
    An input broke a rule; nothing was stored.

    Args:
        field: The offending field, dotted for nested values (``metadata.model``).
        rule: The rule that was broken, as a sentence fragment.
        value: The rejected value, shown abbreviated in the message.
    """

    def __init__(self, field: str, rule: str, value: object = _NOT_SHOWN) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        shown = _abbreviate(value)
        msg = f"Invalid {field!r}: {rule}" + (f" (got {shown})" if shown else "") + "."
        super().__init__(msg)

    def renamed(self, field: str) -> FeedbackValidationError:
        """
        Return the same error naming ``field`` (what a caller calls the same value).
        """
        return FeedbackValidationError(field, self.rule, self.value)


class FeedbackTooLargeError(FeedbackValidationError):
    """
    A text or serialized payload is longer than its limit.

    Args:
        field: The oversized field.
        size: Its length in characters.
        limit: The maximum.
        fixed: The maximum is not a setting (identifiers: 256 characters).
        measured: How the size was measured, when not as sent (e.g. "once NFC-normalized").
    """

    def __init__(
        self, field: str, *, size: int, limit: int, fixed: bool = False, measured: str = ""
    ) -> None:
        self.size = size
        self.limit = limit
        self.fixed = fixed
        self.measured = measured
        advice = "" if fixed else "; shorten it or raise the limit in FeedbackConfig"
        how = f" {measured}" if measured else ""
        super().__init__(
            field, f"must be at most {limit:,} characters but is {size:,}{how}{advice}"
        )

    def renamed(self, field: str) -> FeedbackTooLargeError:
        """
        Return the same error naming ``field``.
        """
        return FeedbackTooLargeError(
            field, size=self.size, limit=self.limit, fixed=self.fixed, measured=self.measured
        )


class FeedbackProcessingError(FeedbackError):
    """
    A pipeline step raised or rejected an item.

    Args:
        step: The name of the step.
        reason: Why the item was not processed.
    """

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"Feedback step {step!r} failed: {reason}")


class FeedbackRejectedError(FeedbackProcessingError):
    """
    A step rejected the item with `RejectFeedback`; ``reason`` is the step's reason.
    """

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(step, reason)
        self.args = (f"Feedback rejected by step {step!r}: {reason}",)


class RejectFeedback(BaseException):
    """
    Raise from a pipeline step to reject the item, with a reason for the caller.

    It derives from BaseException so that a step's ``except Exception`` cannot swallow
    it (like structlog's ``DropEvent``).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class FeedbackAuthorizationError(FeedbackError):
    """
    An ``authorize`` callback refused a submission before any processing.
    """


class FeedbackStorageError(FeedbackError):
    """
    A store could not complete an operation.
    """


class FeedbackConflictError(FeedbackStorageError):
    """
    A different item is already stored under the id of an item being saved.

    Saving the same item again is not a conflict (stores are idempotent on the id);
    saving another type, value, context or metadata under a known id is.

    Args:
        ids: The conflicting ids, sorted.
        in_batch: The other item came earlier in the same batch (not from the store).
    """

    def __init__(self, ids: list[str] | tuple[str, ...], *, in_batch: bool = False) -> None:
        self.ids = tuple(sorted(ids))
        shown = ", ".join(repr(i) for i in self.ids[:_SHOWN_IDS])
        more = f" and {len(self.ids) - _SHOWN_IDS} more" if len(self.ids) > _SHOWN_IDS else ""
        where = "came earlier in this batch under" if in_batch else "is already stored under"
        super().__init__(
            f"A different item {where} id {shown}{more}; "
            "ids identify one item, so give a new item a new id."
        )


class FeedbackOverloadedError(FeedbackStorageError):
    """
    The spool of accepted items is full: nothing was accepted; retry later.

    Args:
        capacity: The configured capacity that was reached.
        retry_after: Seconds after which a retry is likely to succeed.
        where: What is full (``"spool"`` or ``"queue"``) and where it is.
    """

    def __init__(self, where: str, *, capacity: int, retry_after: float) -> None:
        self.where = where
        self.capacity = capacity
        self.retry_after = retry_after
        super().__init__(
            f"The {where} is full ({capacity:,} items waiting for the store); nothing was "
            f"accepted. Retry in {retry_after:g} s, or raise the capacity if the store keeps up."
        )


class FeedbackConfigurationError(FeedbackError, ValueError):
    """
    The configuration is invalid.

    Args:
        key: The configuration key, e.g. ``ai_feedback.store``.
        problem: What is wrong and how to fix it.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"Invalid configuration {key!r}: {problem}")


class ResolutionError(FeedbackError, LookupError):
    """
    The container could not build the requested type.

    Args:
        requested: The type that was asked for.
        reason: Why it could not be built.
    """

    def __init__(self, requested: object, reason: str) -> None:
        self.requested = requested
        self.reason = reason
        super().__init__(f"Cannot resolve {_type_name(requested)}: {reason}")


class UnwrapError(FeedbackError):
    """
    ``unwrap()`` was called on an ``Err`` or ``unwrap_err()`` on an ``Ok``.
    """


def _type_name(tp: object) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def _abbreviate(value: object, limit: int = 60) -> str:
    if value is _NOT_SHOWN:
        return ""
    try:
        shown = repr(value)
    except RecursionError:  # nested deeper than repr can go: show its outer levels
        shown = reprlib.repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        shown = "(too large to show)"
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return f"{type(value).__name__} {shown}"
