"""Tests of the Result type."""

from __future__ import annotations

import pytest

from ai_feedback import Err, Ok, Result, UnwrapError


def test_ok_side() -> None:
    """Ok reports success and unwraps to its value."""
    result: Result[str, Exception] = Ok("id-1")
    assert result.is_ok()
    assert not result.is_err()
    assert result.unwrap() == "id-1"
    assert result.unwrap_or("other") == "id-1"
    assert result.map(str.upper) == Ok("ID-1")


def test_err_side() -> None:
    """Err reports failure, unwraps to its error and chains it when unwrap() is misused."""
    boom = RuntimeError("db down")
    result: Result[str, Exception] = Err(boom)
    assert result.is_err()
    assert not result.is_ok()
    assert result.unwrap_err() is boom
    assert result.unwrap_or("fallback") == "fallback"
    assert result.map(str.upper) is result
    with pytest.raises(UnwrapError, match="check is_ok") as info:
        result.unwrap()
    assert info.value.__cause__ is boom


def test_unwrap_err_on_ok_raises() -> None:
    """unwrap_err() on an Ok raises UnwrapError."""
    with pytest.raises(UnwrapError, match="check is_err"):
        Ok(1).unwrap_err()


def test_err_with_non_exception_has_no_cause() -> None:
    """An Err holding a plain value raises UnwrapError without a cause."""
    with pytest.raises(UnwrapError) as info:
        Err("nope").unwrap()
    assert info.value.__cause__ is None


def test_pattern_matching() -> None:
    """Both sides are pattern-matchable by position."""

    def describe(result: Result[int, str]) -> str:
        match result:
            case Ok(value):
                return f"ok {value}"
            case Err(error):
                return f"err {error}"
        return "unreachable"

    assert describe(Ok(3)) == "ok 3"
    assert describe(Err("x")) == "err x"


def test_result_alias_is_subscriptable_at_runtime() -> None:
    """Result[str, Exception] works in annotations evaluated at run time, as in the seed."""
    alias = Result[str, Exception]
    assert Ok in [getattr(arg, "__origin__", arg) for arg in alias.__args__]
