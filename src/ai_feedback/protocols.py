"""
The seams of ai-feedback: what application code depends on, and what a store implements.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ai_feedback._models import FeedbackItem, FeedbackStats, FeedbackSummary, FeedbackType
from ai_feedback.result import Result

__all__ = ["FeedbackProtocol", "FeedbackStoreProtocol", "SupportsStats"]


@runtime_checkable
class FeedbackProtocol(Protocol):
    """
    **Protocol:** what a service depends on to record and read feedback.

    `FeedbackCollector` implements it.
    """

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Record a rating of the output identified by ``trace_id``.
        """
        ...

    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """
        Return statistics (at least ``total_count``, ``average_rating``, ``by_type``).
        """
        ...


@runtime_checkable
class FeedbackStoreProtocol(Protocol):
    """
    **Protocol:** where feedback items are kept.

    ``save`` is idempotent on the item id and returns expected failures as ``Err``;
    ``find_*`` return newest first; ``aggregate`` counts items created inside the window.
    """

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Store ``feedback``; return ``Ok(id)``, also when the id is already stored.
        """
        ...

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the items whose ``context["session_id"]`` is ``session_id``, newest first.
        """
        ...

    async def find_by_type(
        self,
        feedback_type: FeedbackType,
        *,
        limit: int = 100,
    ) -> list[FeedbackItem]:
        """
        Return at most ``limit`` items of ``feedback_type``, newest first.
        """
        ...

    async def aggregate(
        self,
        *,
        window_hours: int = 24,
    ) -> FeedbackSummary:
        """
        Summarize the items created in the last ``window_hours``.
        """
        ...


@runtime_checkable
class SupportsStats(Protocol):
    """
    **Protocol:** a store that computes filtered statistics itself.

    Every built-in store implements it; `FeedbackCollector` needs it to filter
    ``get_feedback_stats`` by model or provider.
    """

    async def stats(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
    ) -> FeedbackStats:
        """
        Return statistics for the window, filtered by model and provider when given.
        """
        ...
