"""
ai-feedback: collect feedback on AI model outputs, store it, read it back.

Ratings, free-text comments, corrections and labels go through `FeedbackCollector`
into a store (in-memory by default) and come back as statistics and training data.
"""

from __future__ import annotations

from ai_feedback._models import FeedbackItem, FeedbackStats, FeedbackSummary, FeedbackType
from ai_feedback._validation import Limits
from ai_feedback.app import Application, Container, Module
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import (
    FeedbackAuthorizationError,
    FeedbackConfigurationError,
    FeedbackError,
    FeedbackProcessingError,
    FeedbackStorageError,
    FeedbackTooLargeError,
    FeedbackValidationError,
    ResolutionError,
    UnwrapError,
)
from ai_feedback.module import FeedbackModule
from ai_feedback.protocols import FeedbackProtocol, FeedbackStoreProtocol, SupportsStats
from ai_feedback.result import Err, Ok, Result
from ai_feedback.stores.memory import MemoryFeedbackStore

__all__ = [
    "Application",
    "Container",
    "Err",
    "FeedbackAuthorizationError",
    "FeedbackCollector",
    "FeedbackConfig",
    "FeedbackConfigurationError",
    "FeedbackError",
    "FeedbackItem",
    "FeedbackModule",
    "FeedbackProcessingError",
    "FeedbackProtocol",
    "FeedbackStats",
    "FeedbackStorageError",
    "FeedbackStoreProtocol",
    "FeedbackSummary",
    "FeedbackTooLargeError",
    "FeedbackType",
    "FeedbackValidationError",
    "Limits",
    "MemoryFeedbackStore",
    "Module",
    "Ok",
    "ResolutionError",
    "Result",
    "SupportsStats",
    "UnwrapError",
]
