"""
ai-feedback: collect feedback on AI model outputs, store it, read it back.

Ratings, free-text comments, corrections and labels go through `FeedbackCollector`
into a store (in-memory by default) and come back as statistics and training data.
"""

from __future__ import annotations

from ai_feedback._models import (
    Cursor,
    Deleted,
    DeletionReceipt,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesPoint,
    SpoolStatus,
    WriterStatus,
)
from ai_feedback._validation import Limits
from ai_feedback.app import Application, Container, Module
from ai_feedback.capture import Capture, CaptureStore, FeedbackContext, current_context_id
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.events import (
    EventBus,
    FeedbackFailed,
    FeedbackProcessed,
    FeedbackStored,
    FeedbackSubmitted,
)
from ai_feedback.exceptions import (
    FeedbackAuthorizationError,
    FeedbackConfigurationError,
    FeedbackConflictError,
    FeedbackError,
    FeedbackOverloadedError,
    FeedbackProcessingError,
    FeedbackRejectedError,
    FeedbackStorageError,
    FeedbackTooLargeError,
    FeedbackValidationError,
    RejectFeedback,
    ResolutionError,
    UnwrapError,
)
from ai_feedback.module import FeedbackModule
from ai_feedback.pipeline import FeedbackProcessor, Pipeline, ProcessorRegistry, Step
from ai_feedback.protocols import (
    FeedbackProtocol,
    FeedbackStoreProtocol,
    Spool,
    SupportsDelete,
    SupportsDeletionLog,
    SupportsQuery,
    SupportsReplace,
    SupportsScan,
    SupportsSeries,
    SupportsStats,
)
from ai_feedback.result import Err, Ok, Result
from ai_feedback.stores.consistent import ReadYourWritesStore
from ai_feedback.stores.database import DatabaseFeedbackStore
from ai_feedback.stores.memory import MemoryFeedbackStore

__all__ = [
    "Application",
    "Capture",
    "CaptureStore",
    "Container",
    "Cursor",
    "DatabaseFeedbackStore",
    "Deleted",
    "DeletionReceipt",
    "Err",
    "EventBus",
    "FeedbackAuthorizationError",
    "FeedbackCollector",
    "FeedbackConfig",
    "FeedbackConfigurationError",
    "FeedbackConflictError",
    "FeedbackContext",
    "FeedbackError",
    "FeedbackFailed",
    "FeedbackFilter",
    "FeedbackItem",
    "FeedbackModule",
    "FeedbackOverloadedError",
    "FeedbackProcessed",
    "FeedbackProcessingError",
    "FeedbackProcessor",
    "FeedbackProtocol",
    "FeedbackRejectedError",
    "FeedbackStats",
    "FeedbackStorageError",
    "FeedbackStoreProtocol",
    "FeedbackStored",
    "FeedbackSubmitted",
    "FeedbackSummary",
    "FeedbackTooLargeError",
    "FeedbackType",
    "FeedbackValidationError",
    "Limits",
    "MemoryFeedbackStore",
    "Module",
    "Ok",
    "Pipeline",
    "ProcessorRegistry",
    "ReadYourWritesStore",
    "RejectFeedback",
    "ResolutionError",
    "Result",
    "SeriesPoint",
    "Spool",
    "SpoolStatus",
    "Step",
    "SupportsDelete",
    "SupportsDeletionLog",
    "SupportsQuery",
    "SupportsReplace",
    "SupportsScan",
    "SupportsSeries",
    "SupportsStats",
    "UnwrapError",
    "WriterStatus",
    "current_context_id",
]
