"""
The demo: boot an application, record feedback of all four types, print statistics.

Run it with ``python -m ai_feedback.demo`` (``--config PATH`` reads another YAML file).
Unless the configuration chooses a store, the demo keeps its feedback in the SQLite
file ``./ai_feedback_demo.db``, so each run adds to the statistics of the previous ones.
Its items belong to project ``default``, the project of ``ai-feedback serve
--insecure-no-auth``, so that the service's dashboard (``/ui``) shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ai_feedback._models import FeedbackType
from ai_feedback._urls import masked_url
from ai_feedback.app import Application
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import FeedbackError
from ai_feedback.module import FeedbackModule
from ai_feedback.protocols import FeedbackProtocol, FeedbackStoreProtocol

__all__ = ["DEMO_DATABASE_URL", "DEMO_PROJECT", "main", "run"]

DEMO_DATABASE_URL = "sqlite:///./ai_feedback_demo.db"
DEMO_PROJECT = "default"
"""The owner of the demo's items: the project of a service started without keys."""

GOOD_SCORE = 4
_CALLS = (
    ("What is the capital of France?", "Paris."),
    ("Summarize: the cat sat on the mat.", "A cat sat on a mat."),
    ("What is 2 + 2?", "4"),
    ("Translate 'bonjour' to English.", "Goodbye."),
)


async def run(config_path: str | None = None) -> dict[str, Any]:
    """
    Record one item of each type plus a few ratings; return the statistics.
    """
    configured = FeedbackConfig.load(config_path)
    chosen = None
    if "store" not in configured.model_fields_set:  # nobody chose a store: use SQLite
        chosen = FeedbackConfig.load(config_path, store="sqlite", database_url=DEMO_DATABASE_URL)
    async with Application.boot(
        modules=[FeedbackModule.configure(chosen)], config_path=config_path
    ) as app:
        config = await app.container.resolve(FeedbackConfig)
        feedback = await app.container.resolve(FeedbackProtocol)
        collector = await app.container.resolve(FeedbackCollector)
        store = await app.container.resolve(FeedbackStoreProtocol)
        url = config.resolved_database_url
        where = f" at {masked_url(url)}" if config.store != "memory" and url else ""
        print(f"store: {config.store}{where}")

        session = {
            "session_id": "demo-session",
            "model": "gpt-4o",
            "provider": "openai",
            "owner_id": DEMO_PROJECT,
        }
        for i, score in enumerate((5, 4, 4.5, 2)):
            model = "gpt-4o" if i % 2 == 0 else "claude-3-5-sonnet"
            question, answer = _CALLS[i]
            # Capture the model call: feedback on its trace is joined to its input and
            # output, which is what `ai-feedback export sft|dpo|kto` turns into rows.
            async with collector.context(
                "answer", input=question, context_id=f"demo-trace-{i}"
            ) as op:
                op.output = answer
            await feedback.submit_feedback(
                trace_id=f"demo-trace-{i}",
                score=score,
                comment="Missed the point" if score < GOOD_SCORE else "Helpful answer",
                metadata={
                    "model": model,
                    "session_id": "demo-session",
                    "owner_id": DEMO_PROJECT,
                    "source": "demo",
                },
            )
        await collector.collect_text("Please cite your sources.", context=session)
        async with collector.context("answer", input="What is the capital of Australia?") as op:
            op.output = "The capital of Australia is Sydney."
        await collector.collect_correction(
            "The capital of Australia is Sydney.",
            "The capital of Australia is Canberra.",
            context={**session, "trace_id": op.context_id},
        )
        await collector.collect_label("positive", {"text": "I love this!"}, context=session)

        recent = await store.find_by_session("demo-session")
        print(f"items in session demo-session: {len(recent)} (newest first)")
        for item in recent[:3]:
            print(f"  {item.created_at:%H:%M:%S} {item.feedback_type.value:<10} {item.value}")
        corrections = await store.find_by_type(FeedbackType.CORRECTION, limit=1)
        print(f"latest correction: {corrections[0].value}")
        stats = await feedback.get_feedback_stats()
        print("statistics (all models):")
        print(json.dumps(stats, indent=2))
        filtered = await feedback.get_feedback_stats(model="gpt-4o")
        print(
            f"gpt-4o only: total_count={filtered['total_count']} "
            f"average_rating={filtered['average_rating']}"
        )
        if config.store != "memory":
            print("Run the demo again: the totals grow, the feedback is kept in the database.")
        return stats


def main(argv: list[str] | None = None) -> int:
    """
    Run the demo from the command line; return the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m ai_feedback.demo", description=__doc__)
    parser.add_argument("--config", help="YAML file to read instead of ./application.yaml")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.config))
    except FeedbackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
