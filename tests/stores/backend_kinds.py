"""One store of a kind by name, for tests that run on several: memory, SQL, a cache over SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ai_feedback import MemoryFeedbackStore
from ai_feedback.stores.cached import CachedFeedbackStore
from ai_feedback.stores.postgres import PostgresFeedbackStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix
from tests.stores.backend_postgresql import POSTGRES_URL, fresh_schema


@asynccontextmanager
async def open_kind(kind: str, tmp_path: Path) -> AsyncIterator[Any]:
    """
    Yield an empty store: ``memory``, ``sqlite``, ``postgresql`` or ``cached`` (over SQLite).

    Each gets its own file, schema or key prefix, removed afterwards.
    """
    if kind == "memory":
        yield MemoryFeedbackStore()
        return
    if kind == "postgresql":
        async with (
            fresh_schema() as schema,
            await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema) as store,
        ):
            yield store
        return
    async with await SQLiteFeedbackStore.open(tmp_path / f"{kind}.db") as sqlite_store:
        if kind == "sqlite":
            yield sqlite_store
            return
        prefix = unique_prefix()
        try:
            async with CachedFeedbackStore(sqlite_store, REDIS_URL, prefix=prefix) as cached:
                yield cached
        finally:
            await delete_keys(prefix)
