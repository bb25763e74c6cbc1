"""
Benchmark the in-memory store against plain-Python baselines measured in the same run.

Three measurements, each printed as a ratio to its baseline (absolute numbers are shown
too, but they vary between machines and runs; the ratios much less):

1. ``submit_feedback`` throughput through a booted `Application`, with and without
   ``async_processing``, against appending equivalent frozen dataclasses to a list.
2. ``aggregate`` / ``stats`` latency on a store of 1,000,000 items, against one full
   Python scan of the same items; the counts are checked against the scan's.
3. Bytes held per stored item (``tracemalloc``), against the same records kept as frozen
   dataclasses in a list.

Run with ``uv run --no-sync python benchmarks/bench_memory.py [--quick]``; ``--quick``
shrinks every size about tenfold for a smoke run.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import print_table, rate, run_hermetic
from ai_feedback import (
    Application,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackModule,
    FeedbackProtocol,
    FeedbackSummary,
    FeedbackType,
    MemoryFeedbackStore,
)

MODELS = tuple(f"model-{i}" for i in range(10))
PROVIDERS = ("openai", "anthropic", "local")
FILTER_MODEL = "model-3"
WINDOW_HOURS = 24
SPAN_HOURS = 30
# No item is created this close (in hours) to the window's edge, so that the few seconds
# between the store's clock reading and the scan's cannot move an item across it.
EDGE_GAP_HOURS = 0.5
REPEATS = 5
BATCH = 10_000
SESSION_SIZE = 10  # items per session, on average
KIND_WEIGHTS = {
    FeedbackType.RATING: 50,
    FeedbackType.TEXT: 25,
    FeedbackType.CORRECTION: 15,
    FeedbackType.LABEL: 10,
}
TEXTS = ("great answer", "too long", "wrong language", "missed the point", "helpful")
LABELS = ("positive", "negative", "neutral")
ENV_PREFIXES = ("AI_FEEDBACK__", "LEX_AI_FEEDBACK__")


@dataclass(frozen=True, slots=True)
class PlainItem:
    """
    The baseline record: FeedbackItem's fields, without validation or copies.
    """

    feedback_type: FeedbackType
    value: Any
    context: dict[str, Any]
    metadata: dict[str, Any]
    id: str
    created_at: datetime


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
class Spec:
    """
    What one generated item is made of; ``created_at`` is None for "now".
    """

    kind: FeedbackType
    value: Any
    model: str
    provider: str
    session: str
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """
    What the baseline scan computes: counts per type value and the mean rating.
    """

    counts: dict[str, int]
    average_rating: float | None


# --------------------------------------------------------------------------- helpers


def ms(seconds: float) -> str:
    """
    Format a duration in milliseconds.
    """
    return f"{seconds * 1000:,.3f} ms"


def speed_ratio(baseline_s: float, ours_s: float) -> str:
    """
    Describe how fast we are relative to a baseline that is normally faster.
    """
    ratio = baseline_s / ours_s
    if ratio >= 1:
        return f"{ratio:.2f}x of baseline speed (we are {ratio:.1f}x faster)"
    return f"{ratio:.3f}x of baseline speed (baseline is {1 / ratio:.1f}x faster)"


def faster_than_scan(scan_s: float, ours_s: float) -> str:
    """
    Describe how much faster than the full scan an operation is.
    """
    ratio = scan_s / ours_s
    if ratio >= 1:
        return f"{ratio:,.1f}x faster than a full scan"
    return f"{1 / ratio:,.2f}x SLOWER than a full scan"


def median_time(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, object]:
    """
    Run ``fn`` ``repeats`` times; return the median time and the last result.
    """
    times = []
    result: object = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


async def median_time_async(
    fn: Callable[[], Awaitable[object]], repeats: int = REPEATS
) -> tuple[float, object]:
    """
    Await ``fn()`` ``repeats`` times; return the median time and the last result.
    """
    times = []
    result: object = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def make_specs(count: int, rng: random.Random, *, spread: bool) -> list[Spec]:
    """
    Generate ``count`` item specs, oldest first.

    With ``spread``, ``created_at`` covers the last `SPAN_HOURS` (minus a gap around the
    window's edge); otherwise items get "now" when they are built.
    """
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=count)
    sessions = [f"session-{i}" for i in range(max(1, count // SESSION_SIZE))]
    now = datetime.now(UTC)
    ages: list[float | None] = [None] * count
    if spread:
        usable = SPAN_HOURS - 2 * EDGE_GAP_HOURS
        edge = WINDOW_HOURS - EDGE_GAP_HOURS
        hours = [rng.random() * usable for _ in range(count)]
        ages = sorted((h + 2 * EDGE_GAP_HOURS if h >= edge else h for h in hours), reverse=True)
    specs = []
    for kind, age in zip(kinds, ages, strict=True):
        if kind is FeedbackType.RATING:
            value: Any = rng.randint(2, 10) / 2
        elif kind is FeedbackType.TEXT:
            value = rng.choice(TEXTS)
        elif kind is FeedbackType.CORRECTION:
            value = ("the capital is Lyon", "the capital is Paris")
        else:
            value = (rng.choice(LABELS), "classify this sentence")
        created = None if age is None else now - timedelta(hours=age + 1 / 3600)
        specs.append(
            Spec(
                kind,
                value,
                rng.choice(MODELS),
                rng.choice(PROVIDERS),
                rng.choice(sessions),
                created,
            )
        )
    return specs


def fresh_value(spec: Spec) -> Any:
    """
    Build the item's value, with fresh dicts for corrections and labels.
    """
    if spec.kind is FeedbackType.CORRECTION:
        return {"original": spec.value[0], "corrected": spec.value[1]}
    if spec.kind is FeedbackType.LABEL:
        return {"label": spec.value[0], "input": {"text": spec.value[1]}}
    return spec.value


def build_feedback_items(specs: Sequence[Spec]) -> list[FeedbackItem]:
    """
    Build validated FeedbackItems from ``specs`` (ids and, if unset, times generated).
    """
    items = []
    for i, spec in enumerate(specs):
        context = {
            "trace_id": f"trace-{i}",
            "session_id": spec.session,
            "model": spec.model,
            "provider": spec.provider,
        }
        kwargs: dict[str, Any] = {}
        if spec.created_at is not None:
            kwargs["created_at"] = spec.created_at
        items.append(
            FeedbackItem(
                feedback_type=spec.kind,
                value=fresh_value(spec),
                context=context,
                metadata={"source": "bench"},
                **kwargs,
            )
        )
    return items


def build_plain_items(specs: Sequence[Spec]) -> list[PlainItem]:
    """
    Build the baseline records for ``specs``: same fields, same string sizes.
    """
    items = []
    for i, spec in enumerate(specs):
        context = {
            "trace_id": f"trace-{i}",
            "session_id": spec.session,
            "model": spec.model,
            "provider": spec.provider,
        }
        created = spec.created_at if spec.created_at is not None else datetime.now(UTC)
        # A 36-character id, the length of the UUID strings FeedbackItem generates.
        items.append(
            PlainItem(
                spec.kind, fresh_value(spec), context, {"source": "bench"}, f"{i:036d}", created
            )
        )
    return items


# ------------------------------------------------------------- 1. submit throughput


def submit_inputs(count: int, rng: random.Random) -> list[tuple[str, float, str | None, Spec]]:
    """
    Generate the arguments of ``count`` submit_feedback calls.
    """
    specs = make_specs(count, rng, spread=False)
    return [
        (
            f"trace-{i}",
            rng.randint(2, 10) / 2,
            "nice answer" if i % 4 == 0 else None,
            spec,
        )
        for i, spec in enumerate(specs)
    ]


def baseline_append(inputs: Sequence[tuple[str, float, str | None, Spec]]) -> float:
    """
    Append one frozen dataclass per input to a list; return the seconds taken.
    """
    out: list[PlainItem] = []
    start = time.perf_counter()
    for i, (trace_id, score, comment, spec) in enumerate(inputs):
        metadata = {"model": spec.model, "provider": spec.provider, "session_id": spec.session}
        context: dict[str, Any] = {"trace_id": trace_id, **metadata}
        if comment is not None:
            context["comment"] = comment
        out.append(
            PlainItem(FeedbackType.RATING, score, context, metadata, f"{i:036d}", datetime.now(UTC))
        )
    elapsed = time.perf_counter() - start
    if len(out) != len(inputs):
        raise RuntimeError("baseline lost items")
    return elapsed


async def submit_through_app(
    inputs: Sequence[tuple[str, float, str | None, Spec]], *, async_processing: bool
) -> tuple[float, bool]:
    """
    Submit every input through a booted Application; return seconds and the mode used.
    """
    config = FeedbackConfig(async_processing=async_processing, memory_max_items=len(inputs))
    async with Application.boot(modules=[FeedbackModule.configure(config)]) as app:
        feedback = await app.container.resolve(FeedbackProtocol)  # type: ignore[type-abstract]
        collector = await app.container.resolve(FeedbackCollector)
        store = await app.container.resolve(MemoryFeedbackStore)
        effective = collector.config.async_processing
        start = time.perf_counter()
        for trace_id, score, comment, spec in inputs:
            await feedback.submit_feedback(
                trace_id=trace_id,
                score=score,
                comment=comment,
                metadata={
                    "model": spec.model,
                    "provider": spec.provider,
                    "session_id": spec.session,
                },
            )
        await collector.flush()
        elapsed = time.perf_counter() - start
        if len(store) != len(inputs) or store.evicted_count:
            msg = (
                f"async_processing={async_processing}: {len(store)} of {len(inputs)} items "
                f"stored, {store.evicted_count} evicted"
            )
            raise RuntimeError(msg)
    return elapsed, effective


async def bench_submit(count: int) -> list[Row]:
    """
    Measure submit_feedback throughput against the list-append baseline.
    """
    print(f"\n[1] submit_feedback x {count:,} through Application (in-memory store)")
    inputs = submit_inputs(count, random.Random(1))
    gc.collect()
    base = baseline_append(inputs)
    print(f"    baseline (frozen dataclass -> list.append): {base:.3f} s, {rate(count, base)}")
    rows = []
    for async_processing in (False, True):
        gc.collect()
        took, effective = await submit_through_app(inputs, async_processing=async_processing)
        note = "" if effective == async_processing else f" (effective: {effective})"
        print(
            f"    async_processing={async_processing}{note}: {took:.3f} s, "
            f"{rate(count, took)}, {took / count * 1e6:.1f} us/call"
        )
        rows.append(
            Row(
                f"submit_feedback, async_processing={async_processing}",
                rate(count, took),
                rate(count, base),
                speed_ratio(base, took),
            )
        )
    return rows


# ------------------------------------------------------------ 2. aggregate and stats


def scan(items: Sequence[FeedbackItem], model: str | None = None) -> ScanResult:
    """
    Compute aggregate's figures with one full pass over ``items``.
    """
    cutoff = datetime.now(UTC) - timedelta(hours=WINDOW_HOURS)
    counts = dict.fromkeys(FeedbackType, 0)
    rating_sum = 0.0
    rating_count = 0
    for item in items:
        if item.created_at < cutoff:
            continue
        if model is not None and item.context.get("model") != model:
            continue
        counts[item.feedback_type] += 1
        if item.feedback_type is FeedbackType.RATING:
            rating_sum += item.value
            rating_count += 1
    average = rating_sum / rating_count if rating_count else None
    return ScanResult({t.value: n for t, n in counts.items()}, average)


def check_summary(label: str, summary: FeedbackSummary, expected: ScanResult) -> None:
    """
    Raise unless ``summary`` has the scan's counts and mean rating.
    """
    problems = []
    if summary.count_by_type != expected.counts:
        problems.append(f"counts {summary.count_by_type} != scan {expected.counts}")
    if summary.total_count != sum(expected.counts.values()):
        problems.append(f"total {summary.total_count} != scan {sum(expected.counts.values())}")
    ours, theirs = summary.average_rating, expected.average_rating
    if (ours is None) != (theirs is None) or (
        ours is not None and theirs is not None and not math.isclose(ours, theirs, rel_tol=1e-9)
    ):
        problems.append(f"average {ours} != scan {theirs}")
    if problems:
        raise RuntimeError(f"{label}: " + "; ".join(problems))


async def bench_aggregate(count: int) -> list[Row]:
    """
    Measure fill rate, aggregate and stats on a large store against a full scan.
    """
    print(f"\n[2] aggregate/stats on a MemoryFeedbackStore of {count:,} items")
    specs = make_specs(count, random.Random(2), spread=True)
    gc.collect()
    start = time.perf_counter()
    items = build_feedback_items(specs)
    built = time.perf_counter() - start
    del specs
    print(f"    building FeedbackItems (validated): {built:.2f} s, {rate(count, built)}")

    gc.collect()
    start = time.perf_counter()
    by_id = {}
    for item in items:
        by_id[item.id] = item
    dict_fill = time.perf_counter() - start
    del by_id

    gc.collect()
    store = MemoryFeedbackStore(max_items=2 * count)
    start = time.perf_counter()
    for offset in range(0, count, BATCH):
        await store.save_many(items[offset : offset + BATCH])
    fill = time.perf_counter() - start
    if len(store) != count:
        raise RuntimeError(f"store holds {len(store)} items, expected {count}")
    print(
        f"    save_many in batches of {BATCH:,}: {fill:.2f} s, {rate(count, fill)} "
        f"(baseline dict[id] = item: {rate(count, dict_fill)})"
    )
    rows = [
        Row(
            "save_many fill rate (vs dict[id] = item)",
            rate(count, fill),
            rate(count, dict_fill),
            speed_ratio(dict_fill, fill),
        )
    ]

    for model in (None, FILTER_MODEL):
        gc.collect()
        suffix = "" if model is None else f", model={model!r}"
        scan_s, expected = median_time(lambda model=model: scan(items, model))
        if not isinstance(expected, ScanResult):  # pragma: no cover - for the type checker
            raise TypeError(expected)
        agg_s, summary = await median_time_async(
            lambda model=model: store.aggregate(window_hours=WINDOW_HOURS, model=model)
        )
        if not isinstance(summary, FeedbackSummary):  # pragma: no cover
            raise TypeError(summary)
        check_summary(f"aggregate{suffix}", summary, expected)
        stats_s, stats = await median_time_async(
            lambda model=model: store.stats(window_hours=WINDOW_HOURS, model=model)
        )
        summary = getattr(stats, "summary", None)
        if not isinstance(summary, FeedbackSummary):  # pragma: no cover
            raise TypeError(stats)
        check_summary(f"stats{suffix}", summary, expected)
        if getattr(stats, "rating_count", None) != expected.counts[FeedbackType.RATING.value]:
            raise RuntimeError(f"stats{suffix}: rating_count differs from the scan")
        in_window = sum(expected.counts.values())
        print(
            f"    window {WINDOW_HOURS} h{suffix}: {in_window:,} items in window "
            f"(counts match the scan); full scan {ms(scan_s)}, aggregate {ms(agg_s)}, "
            f"stats {ms(stats_s)}"
        )
        rows.append(
            Row(f"aggregate(24h{suffix})", ms(agg_s), ms(scan_s), faster_than_scan(scan_s, agg_s))
        )
        rows.append(
            Row(f"stats(24h{suffix})", ms(stats_s), ms(scan_s), faster_than_scan(scan_s, stats_s))
        )
    return rows


# ------------------------------------------------------------------- 3. bytes per item


def traced_bytes() -> int:
    """
    Collect garbage, then return the bytes tracemalloc currently traces.
    """
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def bench_memory(count: int) -> list[Row]:
    """
    Measure the bytes a MemoryFeedbackStore holds per item against a list of dataclasses.
    """
    print(f"\n[3] bytes per item, {count:,} items (tracemalloc)")
    specs = make_specs(count, random.Random(3), spread=False)

    gc.collect()
    tracemalloc.start()
    before = traced_bytes()
    plain = build_plain_items(specs)
    plain_bytes = traced_bytes() - before
    tracemalloc.stop()
    del plain

    gc.collect()
    tracemalloc.start()
    before = traced_bytes()
    items = build_feedback_items(specs)
    with_inputs = traced_bytes()
    store = MemoryFeedbackStore(max_items=count)
    for offset in range(0, count, BATCH):
        await store.save_many(items[offset : offset + BATCH])
    with_store = traced_bytes()
    del items
    store_only = traced_bytes()
    tracemalloc.stop()
    if len(store) != count:
        raise RuntimeError(f"store holds {len(store)} items, expected {count}")
    del store
    gc.collect()

    per = {
        "baseline": plain_bytes / count,
        "inputs": (with_inputs - before) / count,
        "growth": (with_store - with_inputs) / count,
        "held": (store_only - before) / count,
    }
    print(
        f"    baseline, frozen dataclasses in a list:        {per['baseline']:,.0f} B/item\n"
        f"    input FeedbackItems in a list:                  {per['inputs']:,.0f} B/item\n"
        f"    store growth while saving (shares strings):     {per['growth']:,.0f} B/item\n"
        f"    store alone, after the inputs were dropped:     {per['held']:,.0f} B/item"
    )
    base = f"{per['baseline']:,.0f} B/item"
    return [
        Row(
            "bytes held per stored item (store alone)",
            f"{per['held']:,.0f} B/item",
            base,
            f"{per['held'] / per['baseline']:.2f}x the baseline's bytes",
        ),
        Row(
            "store growth while saving (inputs alive)",
            f"{per['growth']:,.0f} B/item",
            base,
            f"{per['growth'] / per['baseline']:.2f}x the baseline's bytes",
        ),
        Row(
            "input FeedbackItems in a list",
            f"{per['inputs']:,.0f} B/item",
            base,
            f"{per['inputs'] / per['baseline']:.2f}x the baseline's bytes",
        ),
    ]


# ------------------------------------------------------------------------------ main


async def run(quick: bool) -> None:
    """
    Run the three benchmarks and print the summary table.
    """
    scale = 10 if quick else 1
    rows = await bench_submit(100_000 // scale)
    rows += await bench_aggregate(1_000_000 // scale)
    gc.collect()  # free the large store before measuring memory
    rows += await bench_memory(100_000 // scale)
    print_table(("measurement", "ours", "baseline", "ratio (the headline)"), rows)


def main() -> None:
    """
    Run the benchmark from an empty temporary directory.
    """
    run_hermetic("bench_memory", __doc__.splitlines()[1], run)


if __name__ == "__main__":
    main()
