"""
Helpers shared by the benchmark scripts: formatting and the summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any


def rate(count: int, seconds: float) -> str:
    """
    Format a throughput.
    """
    return f"{count / seconds:,.0f} items/s"


def print_table(
    header: Sequence[str],
    rows: Sequence[Any],
    *,
    title: str = "Summary (ratios compare figures measured in this run)",
) -> None:
    """
    Print ``rows`` (dataclasses or sequences of strings) under ``header``, aligned.
    """
    rows = [dataclasses.astuple(r) if dataclasses.is_dataclass(r) else tuple(r) for r in rows]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print(f"\n{title}")
    for row in (header, *rows):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run_hermetic(
    name: str, description: str, run: Callable[[bool], Coroutine[Any, Any, None]]
) -> None:
    """
    Parse ``--quick`` and run ``run(quick)`` from an empty temporary directory.

    FeedbackConfig reads ./application.yaml and AI_FEEDBACK__* variables: the benchmark
    stays hermetic by running where neither exists.
    """
    from ai_feedback.config import ENV_PREFIXES  # noqa: PLC0415 - after sys.path is set

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shrink sizes ~10x (smoke run)")
    args = parser.parse_args()
    for variable in list(os.environ):
        if variable.upper().startswith(ENV_PREFIXES):
            del os.environ[variable]
    print(
        f"{name}: Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s){', --quick' if args.quick else ''}"
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()  # noqa: PTH109 - restored below
        os.chdir(tmp)
        try:
            asyncio.run(run(args.quick))
        finally:
            os.chdir(cwd)
    print(f"\nWall time: {time.perf_counter() - start:.1f} s")
