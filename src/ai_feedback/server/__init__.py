"""
The HTTP service (extra ``server``): the native API, health, metrics and peer routes.

It also serves the Langfuse, LangSmith and MLflow routes their unmodified SDKs send to.

``ai-feedback serve`` runs `create_app` under uvicorn; `install` adds the same routes to
a FastAPI app of yours.
"""

from __future__ import annotations

from ai_feedback.server.app import create_app, feedback_router, install
from ai_feedback.server.auth import Principal
from ai_feedback.server.service import FeedbackService

__all__ = ["FeedbackService", "Principal", "create_app", "feedback_router", "install"]
