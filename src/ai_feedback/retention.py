"""
Retention: delete items older than ``retention_days``, in bounded batches, on a schedule.

`Retention` runs in the process that runs the writer (`FeedbackCollector.start` starts
it when ``retention_days`` is set). Each pass deletes the expired items oldest first,
``retention_batch_size`` at a time, and yields to the event loop between batches, so
ingest keeps going while a large backlog is removed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from ai_feedback._models import FeedbackFilter
from ai_feedback.exceptions import FeedbackError, FeedbackValidationError
from ai_feedback.protocols import SupportsDelete

__all__ = ["Retention"]

_LOG = logging.getLogger("ai_feedback")
_MAX_DAYS = 36_500


class Retention:
    """
    Deletes the items of ``store`` older than ``days``, every ``interval`` seconds.

    Args:
        store: A store that implements `SupportsDelete`.
        days: Age past which items are deleted.
        interval: Seconds between passes.
        batch_size: Most items one delete removes.

    Raises:
        FeedbackValidationError: The store cannot delete, or a number is not positive.
    """

    def __init__(
        self, store: object, *, days: float, interval: float = 3600.0, batch_size: int = 1000
    ) -> None:
        if not isinstance(store, SupportsDelete):
            msg = "cannot delete items, so retention_days cannot apply to it"
            raise FeedbackValidationError("store", msg, type(store).__name__)
        for name, value in (("days", days), ("interval", interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise FeedbackValidationError(name, "must be a positive number", value)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise FeedbackValidationError("batch_size", "must be a positive integer", batch_size)
        if days > _MAX_DAYS:
            raise FeedbackValidationError("days", f"must be at most {_MAX_DAYS} (100 years)", days)
        self._store = store
        self.days = float(days)
        self.interval = float(interval)
        self.batch_size = int(batch_size)
        self.deleted = 0
        self.passes = 0
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Retention days={self.days:g} deleted={self.deleted} passes={self.passes}>"

    async def run_once(self, now: datetime | None = None) -> int:
        """
        Delete every item older than the cutoff, batch by batch; return how many.
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.days)
        where = FeedbackFilter(until=cutoff)  # strictly before the cutoff
        removed = 0
        while True:
            batch = (await self._store.delete(where, limit=self.batch_size)).items
            removed += batch
            if batch < self.batch_size:
                break
            await asyncio.sleep(0)  # let submissions and reads run between batches
        self.deleted += removed
        self.passes += 1
        if removed:
            _LOG.info(
                "Retention deleted %d item(s) created before %s",
                removed,
                cutoff.isoformat(),
                extra={"retention_deleted": removed},
            )
        return removed

    def start(self) -> None:
        """
        Run a pass now and then every ``interval`` seconds, until `aclose`.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ai-feedback-retention")

    async def aclose(self) -> None:
        """
        Stop the schedule (a batch in progress is cancelled; its transaction rolls back).
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except FeedbackError as exc:  # the store is down: try again next time
                _LOG.warning("Retention pass failed: %s", exc)
            except Exception:  # noqa: BLE001 - a bug or a driver error: keep the schedule, loudly
                _LOG.exception("Retention pass failed unexpectedly")
            await asyncio.sleep(self.interval)
