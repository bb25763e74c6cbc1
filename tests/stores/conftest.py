"""
The store fixture: every contract test runs against each store backend.

Each backend lives in ``tests/stores/backend_<name>.py`` as an async context manager
``open_store(tmp_path)`` that yields a fresh, empty store and removes everything it made.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ai_feedback.protocols import FeedbackStoreProtocol

BACKENDS = {
    "memory": (),
    "sqlite": (),
    "postgresql": (pytest.mark.postgres,),
    "cached": (pytest.mark.redis,),
}


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, marks in BACKENDS.items()])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[FeedbackStoreProtocol]:
    """A fresh, empty store of each backend."""
    backend = importlib.import_module(f"tests.stores.backend_{request.param}")
    async with backend.open_store(tmp_path) as opened:
        yield opened
