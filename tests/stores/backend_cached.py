"""The Redis-cached backend for the contract suite: a cache over an in-memory store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from ai_feedback import MemoryFeedbackStore
from ai_feedback.stores.cached import CachedFeedbackStore

REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix() -> str:
    """Return a key prefix no other test or process uses."""
    return f"test:ai_feedback:{uuid.uuid4().hex}:"


async def delete_keys(prefix: str) -> None:
    """Delete every key under ``prefix`` (and only those) from the test Redis."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[CachedFeedbackStore]:
    """Yield a cache with its own key prefix over an empty in-memory store."""
    prefix = unique_prefix()
    try:
        async with CachedFeedbackStore(MemoryFeedbackStore(), REDIS_URL, prefix=prefix) as store:
            yield store
    finally:
        await delete_keys(prefix)
