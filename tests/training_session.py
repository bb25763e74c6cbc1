"""A small feedback session with captured prompts and outputs, for the export tests."""

from __future__ import annotations

from ai_feedback import FeedbackCollector, FeedbackConfig, MemoryFeedbackStore

SYSTEM = {"role": "system", "content": "Answer briefly."}


async def answer(collector: FeedbackCollector, prompt: object, output: str) -> str:
    """Capture one model call and return its trace id."""
    async with collector.context("answer", input=prompt) as op:
        op.output = output
    return op.context_id


async def training_session() -> FeedbackCollector:
    """
    Collect what an application would: corrections, 1-5 ratings, thumbs, labels, text.

    - "capital of France": corrected (Lyon -> Paris) and rated 5.
    - "2+2": two answers, rated 5 ("4") and 1 ("5"): a DPO pair and two KTO rows.
    - "haiku": rated 3 (between the thresholds) and thumbs up.
    - a conversation with a system message, rated 4.
    - a rating and a correction with nothing captured (skipped, never invented).
    - a label with its input, a label without, and a text comment.
    """
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    paris = await answer(collector, "What is the capital of France?", "Lyon")
    await collector.collect_correction(
        "Lyon", "Paris", context={"trace_id": paris, "session_id": "s1"}
    )
    four = await answer(collector, "2+2?", "4")
    five = await answer(collector, "2+2?", "5")
    await collector.collect_rating(5, trace_id=four, context={"session_id": "s1"})
    await collector.collect_rating(1, trace_id=five, context={"session_id": "s1"})
    haiku = await answer(collector, "Write a haiku", "Autumn moonlight")
    await collector.collect_rating(3, trace_id=haiku, context={"session_id": "s2"})
    await collector.collect_rating(
        1, trace_id=haiku, context={"session_id": "s2"}, metadata={"scale": "thumbs"}
    )
    chat = await answer(
        collector,
        {"messages": [SYSTEM, {"role": "user", "content": "Hi"}]},
        "Hello!",
    )
    await collector.collect_rating(4, trace_id=chat, context={"session_id": "s2"})
    await collector.collect_rating(5, context={"session_id": "s3"})
    await collector.collect_correction("a", "b", context={"session_id": "s3"})
    await collector.collect_label("positive", "I love it", context={"session_id": "s3"})
    await collector.collect_label("spam", None, context={"session_id": "s3"})
    await collector.collect_text("Too long", context={"session_id": "s3"})
    return collector
