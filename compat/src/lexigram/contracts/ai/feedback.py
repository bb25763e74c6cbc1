"""Seed compatibility: ``lexigram.contracts.ai.feedback`` re-exports the contracts."""

from ai_feedback import (
    FeedbackItem,
    FeedbackProtocol,
    FeedbackStoreProtocol,
    FeedbackSummary,
    FeedbackType,
)

__all__ = [
    "FeedbackItem",
    "FeedbackProtocol",
    "FeedbackStoreProtocol",
    "FeedbackSummary",
    "FeedbackType",
]
