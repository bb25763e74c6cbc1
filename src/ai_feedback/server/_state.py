"""
Where the routes find the running service: ``app.state.ai_feedback``, set at start-up.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request

from ai_feedback.server.errors import ApiError

__all__ = ["running"]

_LOG = logging.getLogger("ai_feedback")

NOT_STARTED = (
    "The feedback service has not started: the lifespan of its app did not run. "
    "Starlette runs no lifespan for an app mounted with app.mount(); add the service "
    'to your app with ai_feedback.server.install(app, config, prefix="/feedback") '
    "instead, and serve it with lifespan events on (uvicorn's default)."
)


def running(request: Request) -> Any:  # noqa: ANN401 - a FeedbackService (a module that imports this one)
    """
    Return the service state of the app serving ``request``.

    Raises:
        ApiError: 503 when the app's lifespan, which starts the service, did not run.
    """
    state = request.app.state
    found = getattr(state, "ai_feedback", None)
    if found is None:
        if not getattr(state, "ai_feedback_not_started_logged", False):
            state.ai_feedback_not_started_logged = True  # once per app: clients may retry
            _LOG.error(NOT_STARTED)
        raise ApiError(503, "not_started", NOT_STARTED)
    return found
