"""
A small result type for operations whose failures are expected, such as a store write.

``Result[T, E]`` is ``Ok[T] | Err[E]``; both sides are frozen and pattern-matchable::

    match await store.save(item):
        case Ok(item_id):
            ...
        case Err(error):
            ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, NoReturn, TypeAlias, TypeVar

from ai_feedback.exceptions import UnwrapError

__all__ = ["Err", "Ok", "Result"]

T = TypeVar("T", covariant=True)  # noqa: PLC0105 - the conventional name for a result value
E = TypeVar("E", covariant=True)  # noqa: PLC0105
U = TypeVar("U")


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """
    The success side of a `Result`, holding ``value``.
    """

    value: T

    def is_ok(self) -> Literal[True]:
        """
        Return True: this is a success.
        """
        return True

    def is_err(self) -> Literal[False]:
        """
        Return False: this is not a failure.
        """
        return False

    def unwrap(self) -> T:
        """
        Return the value.
        """
        return self.value

    def unwrap_err(self) -> NoReturn:
        """
        Raise `UnwrapError`: an ``Ok`` holds no error.
        """
        msg = f"unwrap_err() called on {self!r}; check is_err() first."
        raise UnwrapError(msg)

    def unwrap_or(self, default: object) -> T:  # noqa: ARG002 - mirrors Err.unwrap_or
        """
        Return the value, ignoring ``default``.
        """
        return self.value

    def map(self, fn: Callable[[T], U]) -> Ok[U]:
        """
        Return ``Ok(fn(value))``.
        """
        return Ok(fn(self.value))


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """
    The failure side of a `Result`, holding ``error``.
    """

    error: E

    def is_ok(self) -> Literal[False]:
        """
        Return False: this is not a success.
        """
        return False

    def is_err(self) -> Literal[True]:
        """
        Return True: this is a failure.
        """
        return True

    def unwrap(self) -> NoReturn:
        """
        Raise `UnwrapError`, chained to the held error when it is an exception.
        """
        msg = f"unwrap() called on {self!r}; check is_ok() first."
        cause = self.error if isinstance(self.error, BaseException) else None
        raise UnwrapError(msg) from cause

    def unwrap_err(self) -> E:
        """
        Return the error.
        """
        return self.error

    def unwrap_or(self, default: U) -> U:
        """
        Return ``default``.
        """
        return default

    def map(self, fn: Callable[[Any], object]) -> Err[E]:  # noqa: ARG002 - mirrors Ok.map
        """
        Return this failure unchanged.
        """
        return self


Result: TypeAlias = Ok[T] | Err[E]
"""
Either `Ok` with a value or `Err` with an error. Subscriptable at run time:
``Result[str, Exception]``.
"""
