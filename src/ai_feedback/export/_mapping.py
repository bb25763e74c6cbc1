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
    "NOT_TEXT",
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


NOT_TEXT = "a message that is not text (tool calls, images)"
"""The skip reason of a conversation holding a message without text."""


def prompt_messages(value: object) -> list[Message] | str | None:
    """
    Return a captured input as chat messages, None when there is none, or why not.

    A string is one user message; a list of ``{role, content}`` messages (or a dict
    holding one under ``messages``) is kept as is, a content given as text parts
    (``[{"type": "text", "text": ...}]``, as chat APIs accept) joined; a conversation
    with a message that has no text (tool calls, images) gives `NOT_TEXT`, a reason to
    skip; any other JSON value becomes one user message holding its compact JSON text.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(_has_role(m) for m in value):
        messages = [_message(m) for m in value]
        if any(m is None for m in messages):
            return NOT_TEXT
        return [m for m in messages if m is not None]
    return [{"role": "user", "content": _json_text(value)}]


def _has_role(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("role") in _ROLES


def _message(value: Mapping[str, Any]) -> Message | None:
    """
    Return ``value`` as a text message, or None when its content is not text.
    """
    content = value.get("content")
    if isinstance(content, str):
        return {"role": value["role"], "content": content}
    if isinstance(content, list) and content:
        texts = [
            part.get("text")
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        ]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return {"role": value["role"], "content": "".join(texts)}  # type: ignore[arg-type]
    return None


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
    if _has_role(value):
        message = _message(value)  # type: ignore[arg-type]
        return None if message is None else message["content"]
    if isinstance(value, list) and value and all(_has_role(m) for m in value):
        answers = [_message(m) for m in value if m["role"] == "assistant"]
        return answers[-1]["content"] if answers and answers[-1] is not None else None
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


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
