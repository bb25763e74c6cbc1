"""Seed compatibility: ``lexigram.ai.feedback`` re-exports the feedback module."""

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackModule,
    MemoryFeedbackStore,
)

__all__ = ["FeedbackCollector", "FeedbackConfig", "FeedbackModule", "MemoryFeedbackStore"]
