"""
One timed submit loop, run in its own process by ``bench_submit.py``.

``python _submit_worker.py IMPL CALL N`` records N ratings and prints the items/s as
JSON. IMPL is ``ours`` (ai-feedback's `FeedbackCollector` on a `MemoryFeedbackStore`,
default configuration, timed until every item is stored), ``ours-sync``
(``async_processing: false``: stored before each call returns) or ``upstream``
(lexigram-ai-feedback 0.1.5008's collector, run by the interpreter of its own
environment) or ``floor`` (the same rules checked by the same functions, a new id,
timestamp and item, a list append; no store indexes, no pipeline, no writer). CALL is
``collect_rating`` or ``submit_feedback``.

Upstream's ``submit_feedback`` lives on its ``FeedbackService`` and needs a store: it
gets the smallest possible one (a list append). Its INFO log line per submission is
filtered out, which only makes it faster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

CONTEXT = {"model": "gpt-4o", "provider": "openai"}
METADATA = {"model": "gpt-4o", "source": "web"}
WARMUP = 1_000


async def _ours(call: str, n: int, *, sync: bool) -> float:
    from ai_feedback import FeedbackCollector, FeedbackConfig, MemoryFeedbackStore  # noqa: PLC0415

    collector = FeedbackCollector(
        MemoryFeedbackStore(max_items=n + WARMUP),
        FeedbackConfig(async_processing=not sync),
    )
    await collector.start()

    async def loop(count: int) -> None:
        if call == "collect_rating":
            for _ in range(count):
                await collector.collect_rating(4.0, context=CONTEXT)
        else:
            for i in range(count):
                await collector.submit_feedback(f"trace-{i}", 4.0, metadata=METADATA)
        await collector.flush()

    await loop(WARMUP)
    start = time.perf_counter()
    await loop(n)
    elapsed = time.perf_counter() - start
    await collector.aclose()
    return n / elapsed


async def _floor(call: str, n: int) -> float:
    from ai_feedback._models import (  # noqa: PLC0415
        DEFAULT_LIMITS,
        FeedbackType,
        check_payload_limits,
        checked_item,
    )
    from ai_feedback._validation import check_id, check_score, json_copy  # noqa: PLC0415

    items: list[Any] = []
    rating = FeedbackType.RATING

    async def collect_rating(score: object, *, context: dict[str, Any]) -> str:
        value = check_score("score", score)
        copied = json_copy("context", context)
        item = checked_item(rating, value, copied, {}, copied=True)
        check_payload_limits(item.context, item.metadata, DEFAULT_LIMITS)
        items.append(item)
        return item.id

    async def submit_feedback(trace_id: object, score: object, metadata: dict[str, Any]) -> None:
        value = check_score("score", score)
        meta = json_copy("metadata", metadata)
        context = {"trace_id": check_id("trace_id", trace_id)}
        for key in ("model", "provider", "session_id", "owner_id"):
            if key in meta:
                context[key] = check_id(f"metadata.{key}", meta[key])
        item = checked_item(rating, value, context, meta, copied=True)
        check_payload_limits(item.context, item.metadata, DEFAULT_LIMITS)
        items.append(item)

    async def loop(count: int) -> None:
        if call == "collect_rating":
            for _ in range(count):
                await collect_rating(4.0, context=CONTEXT)
        else:
            for i in range(count):
                await submit_feedback(f"trace-{i}", 4.0, metadata=METADATA)

    await loop(WARMUP)
    start = time.perf_counter()
    await loop(n)
    return n / (time.perf_counter() - start)


async def _upstream(call: str, n: int) -> float:
    import structlog  # noqa: PLC0415 - upstream's logger, in upstream's environment
    from lexigram.ai.feedback.services.collector import FeedbackCollector  # noqa: PLC0415
    from lexigram.ai.feedback.services.feedback_service import FeedbackService  # noqa: PLC0415
    from lexigram.contracts.core.result import Ok  # noqa: PLC0415

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    class ListStore:
        """The smallest store upstream's service accepts: a list."""

        def __init__(self) -> None:
            self.items: list[Any] = []

        async def save(self, item: Any) -> Any:
            self.items.append(item)
            return Ok(item.id)

    collector = FeedbackCollector()
    service = FeedbackService(store=ListStore())

    async def loop(count: int) -> None:
        if call == "collect_rating":
            for _ in range(count):
                await collector.collect_rating(4.0, owner_id="o", context=CONTEXT)
        else:
            for i in range(count):
                await service.submit_feedback(f"trace-{i}", 4.0, owner_id="o", metadata=METADATA)

    await loop(WARMUP)
    start = time.perf_counter()
    await loop(n)
    return n / (time.perf_counter() - start)


def main() -> None:
    """
    Parse IMPL CALL N, run the loop once, print ``{"rate": items_per_second}``.
    """
    impl, call, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if impl == "upstream":
        rate = asyncio.run(_upstream(call, n))
    elif impl == "floor":
        rate = asyncio.run(_floor(call, n))
    else:
        rate = asyncio.run(_ours(call, n, sync=impl == "ours-sync"))
    print(json.dumps({"rate": rate}))


if __name__ == "__main__":
    main()
