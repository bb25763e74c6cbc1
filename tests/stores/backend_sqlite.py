"""The SQLite backend for the contract suite: a fresh database file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ai_feedback.stores.sqlite import SQLiteFeedbackStore


@asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[SQLiteFeedbackStore]:
    """Yield a store on a new file in ``tmp_path``, closing it afterwards."""
    store = await SQLiteFeedbackStore.open(tmp_path / "contract.db")
    try:
        yield store
    finally:
        await store.aclose()
