"""
The export formats: which items each one uses and the rows it writes.

Field names are exactly those their consumers read: OpenAI's fine-tuning files
(``messages``; ``input``, ``preferred_output``, ``non_preferred_output``) and TRL's
dataset columns (``prompt``, ``completion``, ``chosen``, ``rejected``, ``label``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import orjson

from ai_feedback._models import FeedbackFilter, FeedbackItem, FeedbackType
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.export._mapping import (
    Message,
    Skips,
    captured_input,
    captured_output,
    output_text,
    prompt_messages,
    rating_label,
)

__all__ = ["FLAVORS", "KINDS", "STYLES", "ExportOptions", "Flavor", "Kind", "RowBuilder", "Style"]

Kind: TypeAlias = Literal["sft", "dpo", "kto", "labels", "raw"]
"""What to export: training data (``sft``, ``dpo``, ``kto``), ``labels``, or ``raw`` items."""

Flavor: TypeAlias = Literal["openai", "trl"]
"""Whose field names a training file uses."""

Style: TypeAlias = Literal["conversational", "standard"]
"""TRL's two dataset styles: lists of ``{role, content}`` messages, or plain strings."""

KINDS: tuple[Kind, ...] = ("sft", "dpo", "kto", "labels", "raw")
FLAVORS: tuple[Flavor, ...] = ("openai", "trl")
STYLES: tuple[Style, ...] = ("conversational", "standard")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """
    What an export writes.

    Args:
        kind: ``sft``, ``dpo``, ``kto``, ``labels`` or ``raw``.
        flavor: ``openai`` or ``trl`` field names (``sft`` and ``dpo``; ``kto`` is TRL
            only). None picks ``openai`` for sft and dpo and ``trl`` for kto.
        style: TRL rows as ``conversational`` messages or ``standard`` strings.
        min_rating: A rating at or above it is good (an SFT target, a KTO ``True``).
        max_rating: A rating at or below it is bad (a KTO ``False``); in between is
            neither. Thumbs ratings (``metadata["scale"] == "thumbs"``) are good at 1
            and bad at 0 whatever the thresholds.
        where: Only the items this filter matches.

    Raises:
        FeedbackValidationError: An option is unknown or the thresholds overlap.
    """

    kind: Kind
    flavor: Flavor | None = None
    style: Style = "conversational"
    min_rating: float = 4
    max_rating: float = 2
    where: FeedbackFilter | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FeedbackValidationError("kind", f"must be one of {', '.join(KINDS)}", self.kind)
        flavor = self.flavor
        if flavor is None:
            flavor = "trl" if self.kind == "kto" else "openai"
            object.__setattr__(self, "flavor", flavor)
        if flavor not in FLAVORS:
            raise FeedbackValidationError("flavor", f"must be one of {', '.join(FLAVORS)}", flavor)
        if self.kind == "kto" and flavor != "trl":
            msg = "must be trl for kto (OpenAI has no KTO format)"
            raise FeedbackValidationError("flavor", msg, flavor)
        if self.style not in STYLES:
            msg = f"must be one of {', '.join(STYLES)}"
            raise FeedbackValidationError("style", msg, self.style)
        self._check_thresholds()
        if self.where is not None and not isinstance(self.where, FeedbackFilter):
            raise FeedbackValidationError("where", "must be a FeedbackFilter", self.where)

    def _check_thresholds(self) -> None:
        for name in ("min_rating", "max_rating"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FeedbackValidationError(name, "must be a number", value)
            if not math.isfinite(value):  # NaN would compare false with every rating
                raise FeedbackValidationError(name, "must be a finite number", value)
        if self.max_rating >= self.min_rating:
            msg = f"must be below min_rating ({self.min_rating})"
            raise FeedbackValidationError("max_rating", msg, self.max_rating)

    @property
    def openai(self) -> bool:
        """
        True when rows use OpenAI's field names.
        """
        return self.flavor == "openai"


@dataclass(slots=True)
class _Best:
    """
    The best and worst rated outputs seen for one prompt.
    """

    prompt: list[Message]
    high: tuple[float, str]
    low: tuple[float, str]
    count: int = 1


class RowBuilder:
    """
    Turns items into rows of one format, counting the items it leaves out.

    Call `rows` for each item, then `finish` once (DPO pairs rated outputs at the end).
    """

    def __init__(self, options: ExportOptions) -> None:
        self.options = options
        self.skipped: Skips = Skips()
        self._pairs: dict[str, _Best] = {}
        builders = {
            "sft": self._sft,
            "dpo": self._dpo,
            "kto": self._kto,
            "labels": self._labels,
            "raw": self._raw,
        }
        self.rows = builders[options.kind]

    def __repr__(self) -> str:
        return f"<RowBuilder {self.options.kind} skipped={sum(self.skipped.values())}>"

    def finish(self) -> Iterator[dict[str, Any]]:
        """
        Yield the rows only known once every item was seen (DPO pairs of ratings).
        """
        pairs, self._pairs = self._pairs, {}
        for best in pairs.values():
            (high, chosen), (low, rejected) = best.high, best.low
            if high > low and chosen != rejected:
                self._skip("rating not the best or worst for its prompt", best.count - 2)
                yield from self._preference(best.prompt, chosen, rejected)
            else:
                self._skip("no differently rated output for the same prompt", best.count)

    def _skip(self, reason: str, count: int = 1) -> Iterator[dict[str, Any]]:
        if count > 0:
            self.skipped[reason] += count
        return iter(())

    def _sft(self, item: FeedbackItem) -> Iterator[dict[str, Any]]:
        kind = item.feedback_type
        if kind is FeedbackType.CORRECTION:
            target: str | None = item.value["corrected"] or None
            missing = "empty correction"
        elif kind is FeedbackType.RATING:
            if rating_label(item, **self._thresholds()) is not True:
                return self._skip("rating below min_rating")
            target, missing = output_text(captured_output(item)), "no output captured"
        else:
            return self._skip(f"{kind.value} feedback is not used by sft")
        prompt = prompt_messages(captured_input(item))
        if prompt is None or isinstance(prompt, str):
            return self._skip(prompt or "no prompt captured")
        if target is None:
            return self._skip(missing)
        o = self.options
        if o.openai:
            return iter([{"messages": [*prompt, _assistant(target)]}])
        return self._trl(prompt, completion=target)

    def _dpo(self, item: FeedbackItem) -> Iterator[dict[str, Any]]:
        kind = item.feedback_type
        if kind not in (FeedbackType.CORRECTION, FeedbackType.RATING):
            return self._skip(f"{kind.value} feedback is not used by dpo")
        prompt = prompt_messages(captured_input(item))
        if prompt is None or isinstance(prompt, str):
            return self._skip(prompt or "no prompt captured")
        produced = output_text(captured_output(item))
        if kind is FeedbackType.CORRECTION:
            chosen = item.value["corrected"]
            rejected = item.value["original"] or produced
            if not chosen or not rejected or chosen == rejected:
                return self._skip("correction without an original to prefer it to")
            return self._preference(prompt, chosen, rejected)
        if produced is None:
            return self._skip("no output captured")
        # Ratings are compared within one scale and one score name or key only: a thumbs
        # up (1) is not worse than two stars (2), nor a 0.9 "accuracy" than a 4 "tone".
        metadata = item.metadata
        scale = [metadata.get(k) for k in ("scale", "name", "key")]
        key = orjson.dumps([prompt, [v if isinstance(v, str) else None for v in scale]]).decode()
        seen = (float(item.value), produced)
        best = self._pairs.get(key)
        if best is None:
            self._pairs[key] = _Best(prompt, seen, seen)
        else:
            best.count += 1
            best.high, best.low = max(best.high, seen), min(best.low, seen)
        return iter(())

    def _kto(self, item: FeedbackItem) -> Iterator[dict[str, Any]]:
        if item.feedback_type is not FeedbackType.RATING:
            return self._skip(f"{item.feedback_type.value} feedback is not used by kto")
        label = rating_label(item, **self._thresholds())
        if label is None:
            return self._skip("rating between max_rating and min_rating")
        prompt = prompt_messages(captured_input(item))
        if prompt is None or isinstance(prompt, str):
            return self._skip(prompt or "no prompt captured")
        completion = output_text(captured_output(item))
        if completion is None:
            return self._skip("no output captured")
        return self._trl(prompt, completion=completion, label=label)

    def _labels(self, item: FeedbackItem) -> Iterator[dict[str, Any]]:
        if item.feedback_type is not FeedbackType.LABEL:
            return self._skip(f"{item.feedback_type.value} feedback is not a label")
        given = item.value.get("input")
        source = given if given is not None else captured_input(item)
        if source is None:
            return self._skip("no input")
        return iter(
            [
                {
                    "id": item.id,
                    "created_at": item.created_at.isoformat(),
                    "label": item.value["label"],
                    "input": source,
                    "trace_id": item.trace_id,
                    "session_id": item.session_id,
                    "model": item.model,
                }
            ]
        )

    def _raw(self, item: FeedbackItem) -> Iterator[dict[str, Any]]:
        # The item's fields are already checked JSON values: no copy is needed to encode.
        return iter(
            [
                {
                    "id": item.id,
                    "feedback_type": item.feedback_type.value,
                    "value": item.value,
                    "context": item.context,
                    "metadata": item.metadata,
                    "created_at": item.created_at.isoformat(),
                }
            ]
        )

    def _preference(
        self, prompt: list[Message], chosen: str, rejected: str
    ) -> Iterator[dict[str, Any]]:
        if self.options.openai:
            return iter(
                [
                    {
                        "input": {"messages": prompt},
                        "preferred_output": [_assistant(chosen)],
                        "non_preferred_output": [_assistant(rejected)],
                    }
                ]
            )
        return self._trl(prompt, chosen=chosen, rejected=rejected)

    def _trl(self, prompt: list[Message], **answers: str | bool) -> Iterator[dict[str, Any]]:
        """
        A TRL row: ``prompt`` plus the answer columns, in the chosen style.
        """
        row: dict[str, Any] = {}
        if self.options.style == "standard":
            if len(prompt) != 1 or prompt[0]["role"] != "user":
                return self._skip("prompt is a conversation (use the conversational style)")
            row["prompt"] = prompt[0]["content"]
            row.update(answers)
            return iter([row])
        row["prompt"] = prompt
        for column, answer in answers.items():
            row[column] = answer if isinstance(answer, bool) else [_assistant(answer)]
        return iter([row])

    def _thresholds(self) -> dict[str, float]:
        return {"min_rating": self.options.min_rating, "max_rating": self.options.max_rating}


def _assistant(content: str) -> Message:
    return {"role": "assistant", "content": content}
