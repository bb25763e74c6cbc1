"""
`FeedbackCollector`: the implementation of `FeedbackProtocol`.

Every entry point validates its arguments first and raises `FeedbackValidationError`
naming the argument; nothing is stored when it does.
"""

from __future__ import annotations

import logging
from typing import Any

from ai_feedback._models import FeedbackItem, FeedbackStats, FeedbackType
from ai_feedback._validation import (
    check_id,
    check_mapping,
    check_optional_id,
    check_payload_size,
    check_score,
    check_text,
    json_copy,
)
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import FeedbackStorageError, FeedbackValidationError
from ai_feedback.protocols import FeedbackStoreProtocol, SupportsStats
from ai_feedback.result import Err

__all__ = ["FeedbackCollector"]

_LOG = logging.getLogger("ai_feedback")
# Metadata keys that submit_feedback copies into the item's indexed context.
_CONTEXT_FROM_METADATA = ("model", "provider", "session_id")


class FeedbackCollector:
    """
    Records feedback into a store and reads statistics back.

    Args:
        store: Where items are written.
        config: Limits, the statistics window and the ``enabled`` switch; defaults to
            ``FeedbackConfig()``.

    With ``enabled=False`` every call still validates its input, then stores nothing;
    ``collect_*`` return the id the item would have had.
    """

    def __init__(self, store: FeedbackStoreProtocol, config: FeedbackConfig | None = None) -> None:
        if not isinstance(store, FeedbackStoreProtocol):
            raise FeedbackValidationError("store", "must implement FeedbackStoreProtocol", store)
        self._store = store
        self._config = config if config is not None else FeedbackConfig()
        self._limits = self._config.limits

    def __repr__(self) -> str:
        return f"<FeedbackCollector store={self._store!r} enabled={self._config.enabled}>"

    @property
    def store(self) -> FeedbackStoreProtocol:
        """
        The store items are written to.
        """
        return self._store

    @property
    def config(self) -> FeedbackConfig:
        """
        The effective configuration.
        """
        return self._config

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Record a RATING of the output identified by ``trace_id``.

        ``model``, ``provider`` and ``session_id`` found in ``metadata`` are also put in
        the item's context, where statistics and queries filter on them; a non-blank
        ``comment`` is kept in ``context["comment"]``.

        Raises:
            FeedbackValidationError: An argument is invalid.
            FeedbackStorageError: The store refused the item.
        """
        context: dict[str, Any] = {"trace_id": check_id("trace_id", trace_id)}
        check_score("score", score)
        if comment is not None:
            check_text("comment", comment, limits=self._limits, allow_blank=True)
            if comment.strip():
                context["comment"] = comment
        meta = self._payload("metadata", metadata)
        for key in _CONTEXT_FROM_METADATA:
            if key in meta:
                context[key] = check_id(f"metadata.{key}", meta[key])
        await self._record(FeedbackType.RATING, score, context, meta)

    async def collect_rating(
        self,
        score: float,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """
        Record a numeric rating; return the new item's id.
        """
        check_score("score", score)
        return await self._record(
            FeedbackType.RATING,
            score,
            self._payload("context", context),
            self._payload("metadata", metadata),
        )

    async def collect_text(
        self,
        text: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """
        Record free-text feedback (non-blank); return the new item's id.
        """
        check_text("text", text, limits=self._limits)
        return await self._record(
            FeedbackType.TEXT,
            text,
            self._payload("context", context),
            self._payload("metadata", metadata),
        )

    async def collect_correction(
        self,
        original: str,
        corrected: str,
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """
        Record a correction of a model output; return the new item's id.

        The value stored is ``{"original": original, "corrected": corrected}``.
        """
        check_text("original", original, limits=self._limits, allow_blank=True)
        check_text("corrected", corrected, limits=self._limits, allow_blank=True)
        return await self._record(
            FeedbackType.CORRECTION,
            {"original": original, "corrected": corrected},
            self._payload("context", context),
            self._payload("metadata", metadata),
        )

    async def collect_label(
        self,
        label: str,
        input_data: Any,  # noqa: ANN401 - any JSON value
        *,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """
        Record a ground-truth ``label`` for ``input_data``; return the new item's id.

        The value stored is ``{"label": label, "input": input_data}``; ``input_data``
        must be JSON (dict, list, str, number, bool or None).
        """
        check_text("label", label, limits=self._limits)
        data = json_copy("input_data", input_data)
        check_payload_size("input_data", data, limits=self._limits)
        return await self._record(
            FeedbackType.LABEL,
            {"label": label, "input": data},
            self._payload("context", context),
            self._payload("metadata", metadata),
        )

    async def submit(self, item: FeedbackItem) -> str:
        """
        Record an item built by the caller; return its id.

        Raises:
            FeedbackValidationError: ``item`` is not a FeedbackItem or is over a limit.
            FeedbackStorageError: The store refused the item.
        """
        if not isinstance(item, FeedbackItem):
            raise FeedbackValidationError("item", "must be a FeedbackItem", item)
        item.check_limits(self._limits)
        await self._deliver(item)
        return item.id

    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """
        Return statistics over the configured window, filtered by model and provider.

        The dict holds ``total_count``, ``average_rating`` (None without ratings) and
        ``by_type``, then ``window_hours``, ``model``, ``provider``, ``rating``
        (``count``, ``min``, ``max``, ``percentiles``, ``distribution``) and
        ``by_model`` (``count`` and ``average_rating`` per model).

        Raises:
            FeedbackValidationError: ``model`` or ``provider`` is not a non-blank string.
            FeedbackStorageError: A filter was given but the store cannot filter.
        """
        check_optional_id("model", model)
        check_optional_id("provider", provider)
        await self.flush()
        window = self._config.window_hours
        if isinstance(self._store, SupportsStats):
            stats = await self._store.stats(window_hours=window, model=model, provider=provider)
            return stats.to_dict()
        if model is not None or provider is not None:
            msg = (
                f"{type(self._store).__name__} cannot filter statistics by model or provider; "
                "implement SupportsStats.stats() or use a built-in store"
            )
            raise FeedbackStorageError(msg)
        summary = await self._store.aggregate(window_hours=int(window))
        return FeedbackStats(summary, window).to_dict()

    async def flush(self) -> None:
        """
        Wait until every accepted item is stored (immediate without async processing).
        """

    async def aclose(self) -> None:
        """
        Store what is pending and release resources.
        """
        await self.flush()

    def _payload(self, field: str, value: object) -> dict[str, Any]:
        return check_mapping(field, value, limits=self._limits)

    async def _record(
        self,
        kind: FeedbackType,
        value: object,
        context: dict[str, Any],
        metadata: dict[str, Any],
    ) -> str:
        item = FeedbackItem(feedback_type=kind, value=value, context=context, metadata=metadata)
        await self._deliver(item)
        return item.id

    async def _deliver(self, item: FeedbackItem) -> None:
        if not self._config.enabled:
            return
        result = await self._store.save(item)
        if isinstance(result, Err):
            msg = f"The store refused feedback {item.id!r}: {result.error}"
            raise FeedbackStorageError(msg) from (
                result.error if isinstance(result.error, BaseException) else None
            )
