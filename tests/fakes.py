"""Fake stores for pipeline tests: flaky, slow, raising and counting wrappers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from ai_feedback import (
    Err,
    FeedbackConflictError,
    FeedbackItem,
    FeedbackStats,
    FeedbackStorageError,
    FeedbackSummary,
    FeedbackType,
    MemoryFeedbackStore,
    Result,
)


class WrappedStore:
    """Delegates to a MemoryFeedbackStore and records every write call."""

    def __init__(self) -> None:
        self.inner = MemoryFeedbackStore()
        self.save_calls = 0
        self.batches: list[int] = []

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        self.save_calls += 1
        return await self.inner.save(feedback)

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        batch = list(items)
        self.batches.append(len(batch))
        failure = await self.before_write(batch)
        if failure is not None:
            return failure
        return await self.inner.save_many(batch, raw_payloads=raw_payloads)

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        """Hook for subclasses: return an Err to fail the write."""
        return None

    async def get(self, item_id: str) -> FeedbackItem | None:
        return await self.inner.get(item_id)

    async def get_raw_payload(self, item_id: str) -> Any:
        return await self.inner.get_raw_payload(item_id)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        return await self.inner.find_by_session(session_id)

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        return await self.inner.find_by_type(feedback_type, limit=limit)

    async def aggregate(self, *, window_hours: float = 24) -> FeedbackSummary:
        return await self.inner.aggregate(window_hours=window_hours)

    async def stats(
        self, *, window_hours: float = 24, model: str | None = None, provider: str | None = None
    ) -> FeedbackStats:
        return await self.inner.stats(window_hours=window_hours, model=model, provider=provider)

    def __len__(self) -> int:
        return len(self.inner)


class FlakyStore(WrappedStore):
    """Fails the first ``failures`` batch writes: with Err, or by raising when ``raising``."""

    def __init__(self, failures: int, *, raising: bool = False, partial: bool = False) -> None:
        super().__init__()
        self.remaining = failures
        self.raising = raising
        self.partial = partial

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        if self.partial:  # half the batch lands before the failure, as a dying connection might
            await self.inner.save_many(batch[: len(batch) // 2])
        if self.raising:
            msg = "connection reset"
            raise ConnectionResetError(msg)
        return Err(FeedbackStorageError("database is down"))


class SlowStore(WrappedStore):
    """Takes ``delay`` seconds per batch write."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def before_write(self, batch: list[FeedbackItem]) -> Err[Exception] | None:
        await asyncio.sleep(self.delay)
        return None


class ProtocolOnlyStore:
    """A store with just the four methods of FeedbackStoreProtocol, over a memory store."""

    def __init__(self) -> None:
        self.inner = MemoryFeedbackStore()

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        return await self.inner.save(feedback)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        return await self.inner.find_by_session(session_id)

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        return await self.inner.find_by_type(feedback_type, limit=limit)

    async def aggregate(self, *, window_hours: int = 24) -> FeedbackSummary:
        return await self.inner.aggregate(window_hours=window_hours)


def conflict_ids(result: Result[Any, Exception]) -> tuple[str, ...]:
    """The ids of the FeedbackConflictError in an Err result."""
    error = result.unwrap_err()
    assert isinstance(error, FeedbackConflictError)
    return error.ids
