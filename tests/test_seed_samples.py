"""
Every code sample of the seed guide, run verbatim through the lexigram compatibility package.

The guide's text lost its indentation, so each sample below is the guide's lines with
Python's indentation restored; `test_samples_are_verbatim` proves that, line by line,
nothing else differs. Samples that use top-level ``await`` are compiled with
``PyCF_ALLOW_TOP_LEVEL_AWAIT``, exactly as written.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import FeedbackCollector, FeedbackConfig, MemoryFeedbackStore
from lexigram import Application
from lexigram.ai.feedback import FeedbackModule
from lexigram.contracts.ai.feedback import FeedbackProtocol, FeedbackStoreProtocol, FeedbackType

SEED = Path(__file__).parent / "seed" / "ai-feedback-guide.txt"
SHARED_SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "ai-feedback-guide.txt"

PROTOCOLS = """\
from typing import Any, Protocol, runtime_checkable
from lexigram.contracts.ai.feedback import (
    FeedbackItem,
    FeedbackType,
    FeedbackSummary,
)
from lexigram.result import Result
@runtime_checkable
class FeedbackProtocol(Protocol):
    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None: ...
    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]: ...
@runtime_checkable
class FeedbackStoreProtocol(Protocol):
    async def save(self, feedback: FeedbackItem) -> Result[str, Exception]: ...
    async def find_by_session(self, session_id: str) -> list[FeedbackItem]: ...
    async def find_by_type(
        self,
        feedback_type: FeedbackType,
        *,
        limit: int = 100,
    ) -> list[FeedbackItem]: ...
    async def aggregate(
        self,
        *,
        window_hours: int = 24,
    ) -> FeedbackSummary: ...
"""

ADD_MODULE = """\
from lexigram.ai.feedback import FeedbackModule, FeedbackConfig
app.add_module(
    FeedbackModule.configure(
        FeedbackConfig(
            enabled=True,
            async_processing=True,
            store_raw_payloads=False,
        )
    )
)
"""

APPLICATION_YAML = """\
ai_feedback:
  enabled: true
  async_processing: true # process handlers in the background
  store_raw_payloads: false # persist raw incoming payloads for auditing
"""

RATING_COLLECTOR = """\
from lexigram.contracts.ai.feedback import FeedbackProtocol
class RatingCollector:
    def __init__(self, feedback: FeedbackProtocol) -> None:
        self._feedback = feedback
    async def record_rating(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
    ) -> None:
        await self._feedback.submit_feedback(
            trace_id=trace_id,
            score=score,
            comment=comment,
            metadata={"source": "web-ui"},
        )
"""

RESOLVE_OUTSIDE = """\
async with Application.boot(modules=[FeedbackModule.configure()]) as app:
    feedback = await app.container.resolve(FeedbackProtocol)
    await feedback.submit_feedback(
        trace_id="trace-123",
        score=4.5,
        comment="Good response",
    )
"""

ITEM = """\
from lexigram.contracts.ai.feedback import FeedbackItem, FeedbackType
item = FeedbackItem(
    feedback_type=FeedbackType.RATING,
    value=5,
    context={"model": "gpt-4", "session_id": "sess-001"},
    metadata={"source": "api"},
)
"""

ANALYTICS = """\
from lexigram.contracts.ai.feedback import FeedbackStoreProtocol
class AnalyticsService:
    def __init__(self, store: FeedbackStoreProtocol) -> None:
        self._store = store
    async def daily_summary(self) -> dict:
        summary = await self._store.aggregate(window_hours=24)
        return {
            "total": summary.total_count,
            "avg_rating": summary.average_rating,
            "by_type": summary.count_by_type,
        }
"""

STUB_TEST = """\
from lexigram import Application
from lexigram.ai.feedback import FeedbackModule
from lexigram.contracts.ai.feedback import FeedbackProtocol, FeedbackItem, FeedbackType
async def test_submits_rating() -> None:
    async with Application.boot(modules=[FeedbackModule.stub()]) as app:
        feedback = await app.container.resolve(FeedbackProtocol)
        await feedback.submit_feedback(
            trace_id="test-trace",
            score=5.0,
            comment="Perfect",
        )
        stats = await feedback.get_feedback_stats()
        assert stats["total_count"] >= 1
"""

SAMPLES = {
    "protocols": PROTOCOLS,
    "add_module": ADD_MODULE,
    "application_yaml": APPLICATION_YAML,
    "rating_collector": RATING_COLLECTOR,
    "resolve_outside": RESOLVE_OUTSIDE,
    "item": ITEM,
    "analytics": ANALYTICS,
    "stub_test": STUB_TEST,
}


async def run_sample(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute a sample in ``namespace``, awaiting it when it uses top-level await."""
    code = compile(source, "<seed sample>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # noqa: S307 - the seed's own samples
    if inspect.iscoroutine(result):
        await result
    return namespace


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_samples_are_verbatim(name: str) -> None:
    """Each sample's lines, ignoring indentation, appear consecutively in the seed guide."""
    seed = _stripped_lines(SEED.read_text(encoding="utf-8"))
    sample = _stripped_lines(SAMPLES[name])
    if name == "application_yaml":
        sample = ["application.yaml", *sample]
    starts = [i for i, line in enumerate(seed) if line == sample[0]]
    assert any(seed[i : i + len(sample)] == sample for i in starts), name


def test_vendored_seed_matches_shared() -> None:
    """The vendored copy of the guide is the shared one, when the shared folder is present."""
    if SHARED_SEED.exists():
        assert SEED.read_bytes() == SHARED_SEED.read_bytes()
    assert SEED.stat().st_size > 0


async def test_protocols_sample_matches_the_implementation() -> None:
    """The guide's protocols, defined verbatim, accept our collector and stores."""
    ns = await run_sample(PROTOCOLS, {})

    store = MemoryFeedbackStore()
    assert isinstance(store, ns["FeedbackStoreProtocol"])
    assert isinstance(FeedbackCollector(store), ns["FeedbackProtocol"])


async def test_add_module_and_application_yaml_samples() -> None:
    """configure() with the guide's config boots, and the guide's YAML file is accepted."""
    Path("application.yaml").write_text(APPLICATION_YAML, encoding="utf-8")
    app = Application()
    await run_sample(ADD_MODULE, {"app": app})
    async with app:
        config = await app.container.resolve(FeedbackConfig)
        assert (config.enabled, config.async_processing, config.store_raw_payloads) == (
            True,
            True,
            False,
        )
        feedback = await app.container.resolve(FeedbackProtocol)
        await feedback.submit_feedback(trace_id="t", score=3)
        assert (await feedback.get_feedback_stats())["total_count"] == 1


async def test_rating_collector_sample_is_constructor_injected() -> None:
    """The guide's RatingCollector resolves from the container and records a rating."""
    ns = await run_sample(RATING_COLLECTOR, {"__name__": "seed_rating_collector"})
    async with Application.boot(modules=[FeedbackModule.configure()]) as app:
        rating = await app.container.resolve(ns["RatingCollector"])
        await rating.record_rating("trace-9", 4.0, "fine")
        store = await app.container.resolve(FeedbackStoreProtocol)
        [item] = await store.find_by_type(FeedbackType.RATING)
        assert item.value == 4.0
        assert item.context["trace_id"] == "trace-9"
        assert item.metadata == {"source": "web-ui"}


async def test_resolve_outside_a_service_sample() -> None:
    """The guide's script snippet runs as written (top-level async with)."""
    ns = await run_sample(
        RESOLVE_OUTSIDE,
        {
            "Application": Application,
            "FeedbackModule": FeedbackModule,
            "FeedbackProtocol": FeedbackProtocol,
        },
    )
    assert not ns["app"].is_running
    stats = await ns["feedback"].get_feedback_stats()
    assert stats["total_count"] == 1
    assert stats["average_rating"] == 4.5


async def test_item_sample() -> None:
    """The guide's FeedbackItem builds and is immutable."""
    ns = await run_sample(ITEM, {})
    item = ns["item"]
    assert item.type == "rating"
    assert item.context == {"model": "gpt-4", "session_id": "sess-001"}
    assert item.metadata == {"source": "api"}


async def test_analytics_sample_gets_the_collectors_store() -> None:
    """The guide's AnalyticsService is injected with the store the collector writes to."""
    ns = await run_sample(ANALYTICS, {"__name__": "seed_analytics"})
    async with Application.boot(modules=[FeedbackModule.configure()]) as app:
        feedback = await app.container.resolve(FeedbackProtocol)
        await feedback.submit_feedback(trace_id="a", score=5)
        await feedback.submit_feedback(trace_id="b", score=3)
        analytics = await app.container.resolve(ns["AnalyticsService"])
        summary = await analytics.daily_summary()
        assert summary == {
            "total": 2,
            "avg_rating": 4.0,
            "by_type": {"rating": 2, "text": 0, "correction": 0, "label": 0},
        }


async def test_stub_test_sample_passes() -> None:
    """The guide's own test example passes."""
    ns = await run_sample(STUB_TEST, {"__name__": "seed_stub_test"})
    await ns["test_submits_rating"]()
