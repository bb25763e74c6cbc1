"""
Benchmark the feedback pipeline against baselines measured in the same run.

Three measurements, each printed as a ratio to its baseline (absolute numbers are shown
too, but they vary between machines and runs; the ratios much less):

1. Caller-side ``submit_feedback`` latency (p50/p99) with ``async_processing`` on vs off,
   over an in-memory store and over a store that waits a simulated network round trip
   per write; with async processing the time until everything is durable is shown too.
2. Items/s to durable through the background writer: batched (``save_many``) vs one
   ``save`` per item, on the slow store and on the in-memory store.
3. The cost of an empty pipeline (no steps, no subscribers) vs ``store.save`` directly:
   ``submit(item)`` sync and async, and ``collect_rating`` vs building the item plus
   ``save``.

Run with ``uv run --no-sync python benchmarks/bench_pipeline.py [--quick]``; ``--quick``
shrinks every size about tenfold for a smoke run.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from _common import print_table, rate, run_hermetic
from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackSummary,
    FeedbackType,
    MemoryFeedbackStore,
    Result,
)

MODELS = tuple(f"model-{i}" for i in range(10))
PROVIDERS = ("openai", "anthropic", "local")
SOURCES = ("web", "api", "slack")
SESSION_SIZE = 10  # submissions per session, on average
ROUND_TRIP_S = 0.002  # the slow store's simulated network round trip per write call
BATCH_SIZE = 500
WARMUP = 500  # untimed calls before each measured run, on a throwaway collector
REPEATS = 3  # runs per variant in part 3 (interleaved); the median is reported
ENV_PREFIXES = ("AI_FEEDBACK__", "LEX_AI_FEEDBACK__")

Inputs = list[tuple[str, float, str | None, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Row:
    """
    One line of the final table.
    """

    name: str
    ours: str
    baseline: str
    ratio: str


@dataclass(frozen=True, slots=True)
class Run:
    """
    One measured submission run: per-call latencies and wall-clock totals.
    """

    latencies_ns: list[int]  # sorted
    submit_s: float  # first submit to last submit returned
    durable_s: float  # first submit to everything stored (after flush)
    round_trips: int  # write calls the store received (0 when not counted)

    def pct(self, p: float) -> float:
        """
        Return the ``p``-th percentile latency in microseconds (nearest rank).
        """
        values = self.latencies_ns
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)] / 1000


# ---------------------------------------------------------------------------- stores


class PerItemStore:
    """
    A store exposing ``save`` only (no ``save_many``); each call first waits ``delay``.
    """

    def __init__(self, inner: MemoryFeedbackStore, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.round_trips = 0

    def __len__(self) -> int:
        return len(self.inner)

    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]:
        """
        Wait one round trip, then save into the inner store.
        """
        self.round_trips += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.save(feedback)

    async def find_by_session(self, session_id: str) -> list[FeedbackItem]:
        """
        Delegate to the inner store.
        """
        return await self.inner.find_by_session(session_id)

    async def find_by_type(
        self, feedback_type: FeedbackType, *, limit: int = 100
    ) -> list[FeedbackItem]:
        """
        Delegate to the inner store.
        """
        return await self.inner.find_by_type(feedback_type, limit=limit)

    async def aggregate(self, *, window_hours: int = 24) -> FeedbackSummary:
        """
        Delegate to the inner store.
        """
        return await self.inner.aggregate(window_hours=window_hours)


class BatchingStore(PerItemStore):
    """
    `PerItemStore` plus ``save_many``, which waits one round trip per batch.
    """

    async def save_many(
        self, items: Iterable[FeedbackItem], *, raw_payloads: Mapping[str, Any] | None = None
    ) -> Result[list[str], Exception]:
        """
        Wait one round trip, then save the whole batch into the inner store.
        """
        self.round_trips += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.save_many(items, raw_payloads=raw_payloads)


# --------------------------------------------------------------------------- helpers


def us(value: float) -> str:
    """
    Format microseconds.
    """
    return f"{value:,.1f} us"


def config(*, async_processing: bool) -> FeedbackConfig:
    """
    Return the collector configuration used throughout (writer defaults, explicit).

    The acknowledgement is ``queued`` so that this measures the pipeline itself; what a
    durable acknowledgement adds is measured by ``bench_durability.py``.
    """
    return FeedbackConfig(
        async_processing=async_processing,
        ack="queued",
        batch_size=BATCH_SIZE,
        batch_max_delay_ms=50,
        queue_max_size=10_000,
    )


def make_inputs(count: int, rng: random.Random) -> Inputs:
    """
    Generate the arguments of ``count`` submit_feedback calls, with realistic metadata.
    """
    sessions = max(1, count // SESSION_SIZE)
    return [
        (
            f"trace-{i}",
            rng.randint(2, 10) / 2,
            "nice answer" if i % 4 == 0 else None,
            {
                "model": rng.choice(MODELS),
                "provider": rng.choice(PROVIDERS),
                "session_id": f"session-{rng.randrange(sessions)}",
                "source": rng.choice(SOURCES),
            },
        )
        for i in range(count)
    ]


def make_items(inputs: Inputs) -> list[FeedbackItem]:
    """
    Build the RATING items that ``submit_feedback`` would build from ``inputs``.
    """
    items = []
    for trace_id, score, comment, metadata in inputs:
        context = {"trace_id": trace_id, **metadata}
        del context["source"]
        if comment is not None:
            context["comment"] = comment
        items.append(FeedbackItem(FeedbackType.RATING, score, context, dict(metadata)))
    return items


def check_stored(label: str, collector: FeedbackCollector, store: Any, count: int) -> None:
    """
    Raise unless ``store`` holds ``count`` items and the collector reports no failure.
    """
    if len(store) != count or collector.failures:
        msg = f"{label}: {len(store)} of {count} stored, {len(collector.failures)} failed"
        raise RuntimeError(msg)


async def warm_up(inputs: Inputs, *, async_processing: bool) -> None:
    """
    Exercise the submit path untimed, so first-call costs stay out of the measurement.
    """
    collector = FeedbackCollector(
        MemoryFeedbackStore(max_items=len(inputs)), config(async_processing=async_processing)
    )
    for trace_id, score, comment, metadata in inputs[:WARMUP]:
        await collector.submit_feedback(trace_id, score, comment, metadata)
    await collector.aclose()


async def submit_run(store: Any, inputs: Inputs, *, async_processing: bool) -> Run:
    """
    Time each ``submit_feedback`` call, then the flush; check everything was stored.
    """
    await warm_up(inputs, async_processing=async_processing)
    collector = FeedbackCollector(store, config(async_processing=async_processing))
    submit = collector.submit_feedback
    clock = time.perf_counter_ns
    latencies = [0] * len(inputs)
    gc.collect()
    start = clock()
    for i, (trace_id, score, comment, metadata) in enumerate(inputs):
        t0 = clock()
        await submit(trace_id, score, comment, metadata)
        latencies[i] = clock() - t0
    submitted = clock()
    await collector.flush()
    durable = clock()
    check_stored(f"async_processing={async_processing}", collector, store, len(inputs))
    await collector.aclose()
    latencies.sort()
    return Run(
        latencies,
        (submitted - start) / 1e9,
        (durable - start) / 1e9,
        getattr(store, "round_trips", 0),
    )


async def measured_round_trip(samples: int = 200) -> float:
    """
    Return the mean time ``asyncio.sleep(ROUND_TRIP_S)`` really takes, in seconds.
    """
    start = time.perf_counter()
    for _ in range(samples):
        await asyncio.sleep(ROUND_TRIP_S)
    return (time.perf_counter() - start) / samples


# ------------------------------------------------------------- 1. submit latency


def describe(run: Run) -> str:
    """
    Summarize one run's latencies and totals on one line.
    """
    return (
        f"p50 {us(run.pct(50))}, p99 {us(run.pct(99))}, p99.9 {us(run.pct(99.9))}, "
        f"max {us(run.latencies_ns[-1] / 1000)}; submits {run.submit_s:.3f} s, "
        f"durable {run.durable_s:.3f} s"
        + (f", {run.round_trips:,} store calls" if run.round_trips else "")
    )


async def bench_latency(count: int, slow_count: int) -> list[Row]:
    """
    Measure submit_feedback latency, async vs sync, over a fast and a slow store.
    """
    rows = []
    cases = (
        ("memory store", count, lambda n: MemoryFeedbackStore(max_items=n)),
        (
            f"store with a {ROUND_TRIP_S * 1000:g} ms round trip per write",
            slow_count,
            lambda n: BatchingStore(MemoryFeedbackStore(max_items=n), ROUND_TRIP_S),
        ),
    )
    for label, n, make_store in cases:
        print(f"\n[1] submit_feedback x {n:,}, caller-side latency, {label}")
        inputs = make_inputs(n, random.Random(1))
        runs = {}
        for async_processing in (False, True):
            run = await submit_run(make_store(n), inputs, async_processing=async_processing)
            runs[async_processing] = run
            print(f"    async_processing={async_processing!s:<5}: {describe(run)}")
        sync, asynchronous = runs[False], runs[True]
        rows.extend(
            Row(
                f"submit_feedback p{p} latency, {label} (async vs sync)",
                us(asynchronous.pct(p)),
                us(sync.pct(p)),
                f"sync/async = {sync.pct(p) / asynchronous.pct(p):,.2f}x",
            )
            for p in (50, 99)
        )
        rows.append(
            Row(
                f"submit N + flush to durable, {label} (async vs sync)",
                f"{asynchronous.durable_s:.3f} s",
                f"{sync.durable_s:.3f} s",
                f"sync/async = {sync.durable_s / asynchronous.durable_s:,.2f}x",
            )
        )
    return rows


# ------------------------------------------------------------ 2. batching throughput


async def bench_batching(count: int, slow_count: int) -> list[Row]:
    """
    Measure items/s to durable through the writer, save_many batches vs one save each.
    """
    rows = []
    for label, n, delay in (
        (f"store with a {ROUND_TRIP_S * 1000:g} ms round trip per write", slow_count, ROUND_TRIP_S),
        ("memory store (no delay)", count, 0.0),
    ):
        print(f"\n[2] async writer throughput, submit {n:,} then flush, {label}")
        inputs = make_inputs(n, random.Random(2))
        runs = {}
        for kind in (BatchingStore, PerItemStore):
            store = kind(MemoryFeedbackStore(max_items=n), delay)
            run = await submit_run(store, inputs, async_processing=True)
            runs[kind] = run
            what = f"save_many, batch_size={BATCH_SIZE}" if kind is BatchingStore else "save only"
            print(
                f"    {what:<26}: {rate(n, run.durable_s)} ({run.durable_s:.3f} s, "
                f"{run.round_trips:,} store calls)"
            )
        batched, single = runs[BatchingStore].durable_s, runs[PerItemStore].durable_s
        rows.append(
            Row(
                f"items/s to durable, {label} (save_many vs save)",
                rate(n, batched),
                rate(n, single),
                f"batched/per-item = {single / batched:,.2f}x",
            )
        )
    return rows


# ------------------------------------------------------------- 3. pipeline overhead


async def direct_save(items: Sequence[FeedbackItem]) -> float:
    """
    Baseline: ``await store.save(item)`` for prebuilt items; return seconds.
    """
    store = MemoryFeedbackStore(max_items=len(items))
    save = store.save
    start = time.perf_counter()
    for item in items:
        await save(item)
    took = time.perf_counter() - start
    if len(store) != len(items):
        raise RuntimeError("direct save lost items")
    return took


async def collector_submit(items: Sequence[FeedbackItem], *, async_processing: bool) -> float:
    """
    ``await collector.submit(item)`` for prebuilt items, then flush; return seconds.
    """
    store = MemoryFeedbackStore(max_items=len(items))
    collector = FeedbackCollector(store, config(async_processing=async_processing))
    submit = collector.submit
    start = time.perf_counter()
    for item in items:
        await submit(item)
    await collector.flush()
    took = time.perf_counter() - start
    check_stored("submit(item)", collector, store, len(items))
    await collector.aclose()
    return took


async def build_and_save(inputs: Inputs) -> float:
    """
    Baseline for collect_rating: build each FeedbackItem, then ``store.save`` it.
    """
    store = MemoryFeedbackStore(max_items=len(inputs))
    save = store.save
    start = time.perf_counter()
    for _, score, _, context in inputs:
        await save(FeedbackItem(FeedbackType.RATING, score, context, {"source": "bench"}))
    took = time.perf_counter() - start
    if len(store) != len(inputs):
        raise RuntimeError("build and save lost items")
    return took


async def collect_rating(inputs: Inputs) -> float:
    """
    ``collect_rating(score, context=..., metadata=...)`` through a sync collector.
    """
    store = MemoryFeedbackStore(max_items=len(inputs))
    collector = FeedbackCollector(store, config(async_processing=False))
    collect = collector.collect_rating
    metadata = {"source": "bench"}
    start = time.perf_counter()
    for _, score, _, context in inputs:
        await collect(score, context=context, metadata=metadata)
    took = time.perf_counter() - start
    check_stored("collect_rating", collector, store, len(inputs))
    return took


async def bench_overhead(count: int) -> list[Row]:
    """
    Measure the per-item cost of an empty pipeline against calling the store directly.
    """
    print(f"\n[3] empty pipeline vs store.save, {count:,} items, median of {REPEATS} runs")
    inputs = make_inputs(count, random.Random(3))
    items = make_items(inputs)
    # collect_rating takes the indexed keys in the context (trace_id for the capture join).
    ctx_inputs: Inputs = [
        (t, s, c, {"trace_id": t, **{k: v for k, v in m.items() if k != "source"}})
        for t, s, c, m in inputs
    ]
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "a": lambda: direct_save(items),
        "b": lambda: collector_submit(items, async_processing=False),
        "c": lambda: collector_submit(items, async_processing=True),
        "d-base": lambda: build_and_save(ctx_inputs),
        "d": lambda: collect_rating(ctx_inputs),
    }
    # Warm up every path on a slice, untimed.
    await direct_save(items[:WARMUP])
    await collector_submit(items[:WARMUP], async_processing=False)
    await collector_submit(items[:WARMUP], async_processing=True)
    await build_and_save(ctx_inputs[:WARMUP])
    await collect_rating(ctx_inputs[:WARMUP])
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(REPEATS):
        for key, fn in variants.items():
            gc.collect()
            times[key].append(await fn())
    per = {key: statistics.median(ts) / count * 1e6 for key, ts in times.items()}
    print(
        f"    (a) baseline: await store.save(item), items prebuilt:  {us(per['a'])}/item\n"
        f"    (b) collector.submit(item), async_processing=False:   {us(per['b'])}/item\n"
        f"    (c) collector.submit(item) + flush, async on:         {us(per['c'])}/item\n"
        f"    (d) baseline: FeedbackItem(...) + store.save:          {us(per['d-base'])}/item\n"
        f"    (d) collect_rating(score, context=...), sync:         {us(per['d'])}/item"
    )
    base = f"{us(per['a'])}/item"
    return [
        Row(
            "(b) submit(item), sync collector (vs store.save)",
            f"{us(per['b'])}/item",
            base,
            f"ours/baseline = {per['b'] / per['a']:.2f}x",
        ),
        Row(
            "(c) submit(item) + flush, async collector (vs store.save)",
            f"{us(per['c'])}/item",
            base,
            f"ours/baseline = {per['c'] / per['a']:.2f}x",
        ),
        Row(
            "(d) collect_rating, sync (vs FeedbackItem + store.save)",
            f"{us(per['d'])}/item",
            f"{us(per['d-base'])}/item",
            f"ours/baseline = {per['d'] / per['d-base']:.2f}x",
        ),
    ]


# ------------------------------------------------------------------------------ main


async def run(quick: bool) -> None:
    """
    Run the three benchmarks and print the summary table.
    """
    scale = 10 if quick else 1
    count, slow_count = 50_000 // scale, 10_000 // scale
    round_trip = await measured_round_trip()
    print(
        f"slow store: asyncio.sleep({ROUND_TRIP_S}) takes {round_trip * 1000:.3f} ms on "
        f"average here; batch_size={BATCH_SIZE}, queue_max_size=10,000"
    )
    rows = await bench_latency(count, slow_count)
    rows += await bench_batching(count, slow_count)
    rows += await bench_overhead(count)
    print_table(("measurement", "ours", "baseline", "ratio (the headline)"), rows)


def main() -> None:
    """
    Run the benchmark from an empty temporary directory.
    """
    run_hermetic("bench_pipeline", __doc__.splitlines()[1], run)


if __name__ == "__main__":
    main()
