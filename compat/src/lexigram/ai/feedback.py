"""Seed compatibility: ``lexigram.ai.feedback`` re-exports the feedback module."""

from ai_feedback import (
    DatabaseFeedbackStore,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackModule,
    MemoryFeedbackStore,
)

__all__ = [
    "DatabaseFeedbackStore",
    "FeedbackCollector",
    "FeedbackConfig",
    "FeedbackModule",
    "MemoryFeedbackStore",
]
