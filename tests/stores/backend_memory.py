"""The in-memory backend for the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ai_feedback import MemoryFeedbackStore


@asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[MemoryFeedbackStore]:
    """Yield an empty in-memory store."""
    yield MemoryFeedbackStore()
