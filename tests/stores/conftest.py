"""The store fixture: every contract test runs against each store backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ai_feedback import MemoryFeedbackStore
from ai_feedback.protocols import FeedbackStoreProtocol


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[FeedbackStoreProtocol]:
    """A fresh, empty store of each backend."""
    if request.param == "memory":
        yield MemoryFeedbackStore()
