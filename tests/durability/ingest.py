"""
A plain script that submits ratings as fast as it can, printing each acknowledged id.

The crash and outage tests run it as a child process and kill it (-9), stop it
(SIGTERM), or take its database away. It is configured like any application, through
``AI_FEEDBACK__*`` environment variables, and boots the default `Application`.

    python -m tests.durability.ingest [--count N] [--tasks T] [--rate R]

``--count 0`` only boots and shuts down: what a crash left in the spool is written.
A line ``DONE`` follows the last id when every submission returned.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ai_feedback import Application, FeedbackCollector, FeedbackModule


async def main(count: int, tasks: int, rate: float, session: str) -> None:
    """Submit ``count`` ratings from ``tasks`` tasks, ``rate`` per second in all (0: no limit)."""
    async with Application.boot(modules=[FeedbackModule.configure()]) as app:
        collector = await app.container.resolve(FeedbackCollector)
        sys.stdout.write(f"READY {collector!r}\n")
        sys.stdout.flush()
        per_task = count // tasks if count else 0
        pause = tasks / rate if rate else 0.0

        async def submit(task: int) -> None:
            for i in range(per_task):
                item_id = await collector.collect_rating(
                    (i % 5) + 1, context={"session_id": f"{session}-{task}", "model": "m"}
                )
                sys.stdout.write(item_id + "\n")
                sys.stdout.flush()
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(submit(t) for t in range(tasks)))
        sys.stdout.write("DONE\n")
        sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--session", default="ingest")
    args = parser.parse_args()
    asyncio.run(main(args.count, args.tasks, args.rate, args.session))
