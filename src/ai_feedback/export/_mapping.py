"""
From feedback items to training rows: where the prompt and the output come from.

The prompt and output are what was captured with the item: ``context["captured"]``
(`FeedbackContext`, the capture middleware), else ``context["input"]`` and
``context["output"]``. Nothing is invented: an item without what a format needs is
skipped and counted under a reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import orjson

from ai_feedback._models import FeedbackItem, FeedbackType

__all__ = [
    "Message",
    "Skips",
    "captured_input",
    "captured_output",
    "output_text",
    "prompt_messages",
    "rating_label",
]

Message: TypeAlias = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant" | "tool", "content": str}``."""

Skips: TypeAlias = Counter[str]
"""How many items were left out, by reason."""

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


def captured_input(item: FeedbackItem) -> Any:  # noqa: ANN401 - any JSON value
    """
    Return what the judged operation received, or None when unknown.
    """
    return _captured(item, "input")


def captured_output(item: FeedbackItem) -> Any:  # noqa: ANN401 - any JSON value
    """
    Return what the judged operation produced, or None when unknown.
    """
    return _captured(item, "output")


def _captured(item: FeedbackItem, key: str) -> Any:  # noqa: ANN401 - any JSON value
    captured = item.context.get("captured")
    if isinstance(captured, Mapping) and captured.get(key) is not None:
        return captured[key]
    return item.context.get(key)


def prompt_messages(value: object) -> list[Message] | None:
    """
    Return a captured input as chat messages, or None when there is none.

    A string is one user message; a list of ``{role, content}`` messages (or a dict
    holding one under ``messages``) is kept as is; any other JSON value becomes one user
    message holding its compact JSON text.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    return [{"role": "user", "content": _json_text(value)}]


def output_text(value: object) -> str | None:
    """
    Return a captured output as the assistant's text, or None when there is none.

    A string is kept; a message (``{role, content}``) or a list of messages gives the
    content of its last assistant message; any other JSON value its compact JSON text.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if _is_message(value):
        return str(value["content"])  # type: ignore[index]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        answers = [m["content"] for m in value if m["role"] == "assistant"]
        return answers[-1] if answers else None
    return _json_text(value)


def rating_label(
    item: FeedbackItem, *, min_rating: float, max_rating: float
) -> Literal[True, False] | None:
    """
    Return True for a good rating, False for a bad one, None for one in between.

    A thumbs rating (``metadata["scale"] == "thumbs"``) is good at 1 and bad at 0;
    any other rating is good at or above ``min_rating`` and bad at or below
    ``max_rating``.
    """
    if item.feedback_type is not FeedbackType.RATING:
        return None
    score = item.value
    if item.metadata.get("scale") == "thumbs":
        return True if score >= 1 else False if score <= 0 else None
    if score >= min_rating:
        return True
    if score <= max_rating:
        return False
    return None


def _is_message(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("role") in _ROLES
        and isinstance(value.get("content"), str)
    )


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
