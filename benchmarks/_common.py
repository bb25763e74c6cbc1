"""
Helpers shared by the benchmark scripts: formatting and the summary table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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
