"""
`ReadYourWritesStore`: a view of a store that waits for queued writes before reading.

With ``async_processing`` on, an accepted item may still be in the writer's queue. The
store that `FeedbackModule` registers for `FeedbackStoreProtocol` is this view, so a
service injected with the store (like the seed's ``AnalyticsService``) sees everything
submitted before its query, as SPEC §2 requires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from ai_feedback._models import (
    Cursor,
    Deleted,
    FeedbackFilter,
    FeedbackItem,
    FeedbackStats,
    FeedbackSummary,
    FeedbackType,
    SeriesBucket,
    SeriesPoint,
)
from ai_feedback.exceptions import FeedbackStorageError
from ai_feedback.protocols import FeedbackStoreProtocol
from ai_feedback.result import Result
from ai_feedback.stores._common import newer_filters, scan_pages, store_location

__all__ = ["ReadYourWritesStore"]


class ReadYourWritesStore:
    """
    Delegates to ``store``, calling ``flush()`` before every read.

    Writes go straight to ``store`` (they bypass the pipeline). Methods the inner store
    lacks raise `FeedbackStorageError`.

    Args:
        store: The store the collector writes to.
        flush: Waits until every accepted item is written.
    """

    def __init__(self, store: FeedbackStoreProtocol, flush: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._flush = flush

    def __repr__(self) -> str:
        return f"<ReadYourWritesStore over {self._store!r}>"

    @property
    def inner(self) -> FeedbackStoreProtocol:
        """
        The store being viewed.
        """
        return self._store

    @property
    def location(self) -> str | None:
        """
        Where the viewed store keeps items.
        """
        return store_location(self._store)

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Save directly into the inner store.
        """
        return await self._store.save(feedback)

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Save a batch directly into the inner store.
        """
        save_many = self._method("save_many")
        if raw_payloads is None:
            result: Result[list[str], Exception] = await save_many(items)
        else:
            result = await save_many(items, raw_payloads=raw_payloads)
        return result

    async def replace_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Replace items in the inner store once pending writes are done (they come first).
        """
        await self._flush()
        result: Result[list[str], Exception] = await self._method("replace_many")(
            items, raw_payloads=raw_payloads
        )
        return result

    async def get(self, item_id: str) -> FeedbackItem | None:
        """
        Return the item with ``item_id`` once pending writes are done.
        """
        await self._flush()
        item: FeedbackItem | None = await self._method("get")(item_id)
        return item

    async def get_raw_payload(self, item_id: str) -> Any:  # noqa: ANN401 - any JSON value
        """
        Return the raw payload of ``item_id`` once pending writes are done.
        """
        await self._flush()
        return await self._method("get_raw_payload")(item_id)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Return the session's items, newest first, once pending writes are done.
        """
        await self._flush()
        return await self._store.find_by_session(session_id)

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Return items of ``feedback_type``, newest first, once pending writes are done.
        """
        await self._flush()
        return await self._store.find_by_type(feedback_type, limit=limit)

    async def query(
        self,
        where: FeedbackFilter | None = None,
        *,
        limit: int = 100,
        before: Cursor | None = None,
    ) -> list[FeedbackItem]:
        """
        Return a page of items matching ``where`` once pending writes are done.
        """
        await self._flush()
        items: list[FeedbackItem] = await self._method("query")(where, limit=limit, before=before)
        return items

    async def scan(
        self, where: FeedbackFilter | None = None, *, page_size: int = 1000
    ) -> AsyncIterator[FeedbackItem]:
        """
        Yield every item matching ``where``, newest first, once pending writes are done.
        """
        await self._flush()
        async for item in scan_pages(self._method("query"), where, page_size):
            yield item

    def raw_lines(self, where: FeedbackFilter | None = None) -> AsyncIterator[bytes] | None:
        """
        The inner store's server-built raw export (after pending writes), or None.
        """
        lines = getattr(self._store, "raw_lines", None)
        chunks: AsyncIterator[bytes] | None = None if lines is None else lines(where)
        return None if chunks is None else self._flushed(chunks)

    async def _flushed(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        await self._flush()
        async for chunk in chunks:
            yield chunk

    async def delete(self, where: FeedbackFilter, *, limit: int | None = None) -> Deleted:
        """
        Delete the matching items once pending writes are done (so none lands afterwards).
        """
        await self._flush()
        removed: Deleted = await self._method("delete")(where, limit=limit)
        return removed

    async def aggregate(
        self, *, window_hours: float = 24, **filters: str | None
    ) -> FeedbackSummary:
        """
        Summarize the window once pending writes are done (filters pass through).
        """
        await self._flush()
        if filters:
            summary: FeedbackSummary = await self._method("aggregate")(
                window_hours=window_hours, **filters
            )
            return summary
        return await self._store.aggregate(window_hours=window_hours)  # type: ignore[arg-type]

    async def stats(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> FeedbackStats:
        """
        Return the window's statistics once pending writes are done.
        """
        await self._flush()
        filters = newer_filters(owner_id, feedback_type)
        stats: FeedbackStats = await self._method("stats")(
            window_hours=window_hours, model=model, provider=provider, **filters
        )
        return stats

    async def series(
        self,
        *,
        window_hours: float = 24,
        bucket: SeriesBucket = "hour",
        model: str | None = None,
        provider: str | None = None,
        owner_id: str | None = None,
        feedback_type: FeedbackType | str | None = None,
    ) -> list[SeriesPoint]:
        """
        Return the window's time series once pending writes are done.
        """
        await self._flush()
        filters = newer_filters(owner_id, feedback_type)
        points: list[SeriesPoint] = await self._method("series")(
            window_hours=window_hours, bucket=bucket, model=model, provider=provider, **filters
        )
        return points

    def _method(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name, None)
        if method is None:
            msg = f"{type(self._store).__name__} has no {name}()"
            raise FeedbackStorageError(msg)
        return method  # type: ignore[no-any-return]
