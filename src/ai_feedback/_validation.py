"""
The input rules of SPEC §5, shared by the models, the collector and the stores.

Each check raises `FeedbackValidationError` (or `FeedbackTooLargeError`) naming the field
and the rule, before anything is stored.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ai_feedback.exceptions import FeedbackTooLargeError, FeedbackValidationError

MAX_TEXT_LENGTH = 10_000
MAX_PAYLOAD_CHARS = 50_000
MAX_ID_LENGTH = 256
MAX_WINDOW_HOURS = 1_000_000
"""The longest statistics window (about 114 years); longer ones overflow dates."""
# Larger scores are never ratings, and they overflow database averages (float8 sums).
MAX_SCORE = 1e15
# The integers orjson (and so every store) can encode.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1

JSONValue = Any
"""A value made only of dict (str keys), list, str, int, float, bool and None."""


@dataclass(frozen=True, slots=True)
class Limits:
    """
    Size limits applied to every submitted item.

    Args:
        max_text_length: Longest accepted text (comments, text feedback, corrections,
            labels), in characters.
        max_payload_chars: Longest accepted ``context`` or ``metadata``, in characters
            of its JSON serialization.
    """

    max_text_length: int = MAX_TEXT_LENGTH
    max_payload_chars: int = MAX_PAYLOAD_CHARS


DEFAULT_LIMITS = Limits()


def check_id(field: str, value: object) -> str:
    """
    Return ``value`` if it is a usable identifier: a non-blank string of bounded length.
    """
    if not isinstance(value, str):
        raise FeedbackValidationError(field, "must be a string", value)
    if not value.strip():
        raise FeedbackValidationError(field, "must not be empty or blank", value)
    if len(value) > MAX_ID_LENGTH:
        raise FeedbackTooLargeError(field, size=len(value), limit=MAX_ID_LENGTH, fixed=True)
    problem = string_problem(value)
    if problem:
        raise FeedbackValidationError(field, problem)
    return str(value)


def check_item_id(field: str, value: object) -> str:
    """
    Return ``value`` if it can be an item's id: `check_id`, and not ``.`` or ``..``.

    An id is a segment of its URL (``/v1/feedback/{id}``), and clients resolve ``.``
    and ``..`` segments away before sending.
    """
    checked = check_id(field, value)
    if checked in (".", ".."):
        raise FeedbackValidationError(
            field, "must not be '.' or '..' (no URL can name them)", value
        )
    return checked


def check_optional_id(field: str, value: object) -> str | None:
    """
    Like `check_id`, but ``None`` is allowed.
    """
    return None if value is None else check_id(field, value)


def check_score(field: str, value: object) -> float | int:
    """
    Return ``value`` if it is a finite int or float; ``bool`` is not a score.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeedbackValidationError(field, "must be a number (int or float, not bool)", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise FeedbackValidationError(field, "must be a finite number", value)
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise FeedbackValidationError(field, "must fit in 64 bits", value)
    if abs(value) > MAX_SCORE:
        raise FeedbackValidationError(
            field, f"must be between -{MAX_SCORE:g} and {MAX_SCORE:g}", value
        )
    return int(value) if isinstance(value, int) else float(value)


def check_text(
    field: str, value: object, *, limits: Limits = DEFAULT_LIMITS, allow_blank: bool = False
) -> str:
    """
    Return ``value`` if it is a string within the text limit (non-blank unless allowed).
    """
    if not isinstance(value, str):
        raise FeedbackValidationError(field, "must be a string", value)
    if not allow_blank and not value.strip():
        raise FeedbackValidationError(field, "must not be empty or blank", value)
    if len(value) > limits.max_text_length:
        raise FeedbackTooLargeError(field, size=len(value), limit=limits.max_text_length)
    problem = string_problem(value)
    if problem:
        raise FeedbackValidationError(field, problem)
    return str(value)


def check_normalized_length(field: str, text: str, *, limits: Limits = DEFAULT_LIMITS) -> None:
    """
    Raise `FeedbackTooLargeError` when ``text`` exceeds the text limit once NFC-normalized.

    The built-in processors store texts and labels in NFC, which lengthens a few
    characters (up to three times): the limit applies to what is stored.
    """
    if len(text) * 3 > limits.max_text_length and not text.isascii():
        size = len(unicodedata.normalize("NFC", text))
        if size > limits.max_text_length:
            raise FeedbackTooLargeError(
                field, size=size, limit=limits.max_text_length, measured="once NFC-normalized"
            )


def check_payload_size(field: str, value: JSONValue, *, limits: Limits = DEFAULT_LIMITS) -> int:
    """
    Return the serialized length of ``value``; raise when it exceeds the payload limit.
    """
    # Serialized bytes >= characters, so checking bytes first keeps the common case at one pass.
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # values not built by json_copy
        raise FeedbackValidationError(field, f"must be serializable as JSON: {exc}") from None
    size = len(raw)
    if size > limits.max_payload_chars:
        size = len(raw.decode())
        if size > limits.max_payload_chars:
            raise FeedbackTooLargeError(field, size=size, limit=limits.max_payload_chars)
    return size


# orjson reads integers beyond 64 bits as floats; a run of 19 digits may be one.
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


def json_loads(data: bytes) -> Any:  # noqa: ANN401 - any JSON value
    """
    Return the JSON value of ``data``, keeping integers beyond 64 bits exact.

    orjson reads such integers as floats (and very long ones not at all), so 10**30
    would pass the checks as 1e30; read exactly, they are refused by the rules that
    follow (`json_copy`, `check_score`), naming their field. Only a document with a run
    of 19 digits is read twice; everything else is orjson's verdict.

    Raises:
        orjson.JSONDecodeError: ``data`` is not valid JSON.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers it cannot hold as doubles; the rest is not JSON.
        if "number is infinity" not in str(exc) or _LONG_DIGITS.search(data) is None:
            raise
        return _exact(data, exc)
    if _LONG_DIGITS.search(data) is None:
        return value
    try:
        return _exact(data, None)
    except RecursionError:  # valid, but nested too deep to read again: refused later
        return value


def _exact(data: bytes, refused: orjson.JSONDecodeError | None) -> Any:  # noqa: ANN401
    """
    The JSON value of ``data`` read by the standard library, integers exact.

    ``refused`` is orjson's error for ``data``, raised again if this reading fails too.
    """
    try:
        # NaN and Infinity are not JSON (the standard library would accept them).
        return json.loads(data, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:  # malformed, too deep, too many digits
        if refused is not None:
            raise refused from None
        raise orjson.JSONDecodeError(str(exc), data.decode("utf-8", "replace"), 0) from None


def _not_json(name: str) -> Any:  # noqa: ANN401 - never returns
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


class _NotPlainJSON(Exception):  # noqa: N818 - internal signal
    """Raised by the fast copy on anything it does not handle; the slow path decides."""


# Deeper structures are refused: orjson stops at 254 levels and Python's recursion limit
# is near, and no feedback payload needs more.
MAX_DEPTH = 64


def string_problem(value: str) -> str:
    """
    Return why ``value`` cannot be stored by every store ('' when it can).

    NUL characters are refused by PostgreSQL; lone surrogates are not valid UTF-8.
    """
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (no lone surrogates)"
    return ""


def _fast_copy(value: object, depth: int) -> Any:  # noqa: ANN401, C901, PLR0912 - one type dispatch
    kind = type(value)
    if kind is str:
        if string_problem(value):  # type: ignore[arg-type]
            raise _NotPlainJSON
        return value
    if kind is bool or value is None:
        return value
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:  # type: ignore[operator]
            return value
        raise _NotPlainJSON
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise _NotPlainJSON
    if depth >= MAX_DEPTH:
        raise _NotPlainJSON
    if kind is dict:
        out = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or string_problem(key):
                raise _NotPlainJSON
            if type(item) is str and "\x00" not in item and item.isascii():
                out[key] = item  # the usual flat string value, without a call
            else:
                out[key] = _fast_copy(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [_fast_copy(item, depth + 1) for item in value]  # type: ignore[attr-defined]
    raise _NotPlainJSON


def json_copy(field: str, value: object, *, wrapped: bool = False) -> Any:  # noqa: ANN401
    """
    Return a deep copy of a JSON value, rejecting anything JSON cannot hold losslessly.

    Tuples become lists and subclasses of str, int and float their base types. Dict keys
    must be strings; floats finite; integers within 64 bits; strings free of NUL and
    lone surrogates; nesting at most `MAX_DEPTH` levels (one more when ``wrapped``: a
    raw payload holds the submitted dicts one level down).
    """
    depth = -1 if wrapped else 0
    # Plain dicts, lists and scalars take a fast path that builds no error paths; anything
    # else (subclasses, invalid values) goes through the checked copy below.
    try:
        return _fast_copy(value, depth)
    except _NotPlainJSON:
        return _checked_copy(field, value, depth)


def _checked_copy(field: str, value: object, depth: int) -> Any:  # noqa: ANN401, C901, PLR0912
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise FeedbackValidationError(field, "must not hold integers beyond 64 bits", value)
        return int(value)
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            raise FeedbackValidationError(field, problem)
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeedbackValidationError(field, "must not contain NaN or infinity", value)
        return float(value)
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        raise FeedbackValidationError(field, f"must not be nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise FeedbackValidationError(field, "must have string keys only", key)
            problem = string_problem(key)
            if problem:
                raise FeedbackValidationError(field, f"keys {problem}")
            out[str(key)] = _checked_copy(f"{field}.{key}", item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_checked_copy(f"{field}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    raise FeedbackValidationError(
        field,
        "must hold only JSON values (dict, list, str, int, float, bool, None)",
        value,
    )
