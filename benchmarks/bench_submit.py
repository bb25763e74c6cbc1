"""
The submit path against the upstream package, measured in the same run.

``collect_rating`` and ``submit_feedback`` record ratings on the in-memory store; the
same calls of the upstream collector (``lexigram-ai-feedback==0.1.5008``, installed into
a throw-away environment of its own, since our compatibility package takes the
``lexigram`` name) are the baseline. Each measurement runs in a fresh process; the
implementations alternate, 5 repetitions each; min/median/max items/s are printed with
the ratio of the medians. Ours is timed until every item is stored (``flush``), in the
default configuration (background writer) and with ``async_processing: false``.
Target: ours >= 1.5x upstream.

A third row, ``floor``, checks the same rules with the same functions, makes a new id,
timestamp and item, and appends it to a list (no store indexes, no pipeline, no writer):
a bound for any submit path built from these parts.

Run with ``uv run --no-sync python benchmarks/bench_submit.py [--quick]``. The upstream
environment is kept in ``~/.cache/ai-feedback-bench`` (``AI_FEEDBACK_BENCH_CACHE``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table

UPSTREAM = "lexigram-ai-feedback==0.1.5008"
ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_submit_worker.py"
CALLS = ("collect_rating", "submit_feedback")
IMPLS = ("upstream", "ours", "ours-sync", "floor")
REPEATS = 5
TARGET = 1.5


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        sys.exit("uv is needed to build the upstream environment (run ./scripts/test once)")
    return found


def upstream_python() -> Path:
    """
    Return the interpreter of an environment holding only the upstream package.
    """
    cache = Path(
        os.environ.get("AI_FEEDBACK_BENCH_CACHE", Path.home() / ".cache" / "ai-feedback-bench")
    )
    venv = cache / ("upstream-" + UPSTREAM.split("==")[1])
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"Installing {UPSTREAM} into {venv} ...", flush=True)
        uv = _uv()
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        subprocess.run([uv, "pip", "install", "--quiet", UPSTREAM], check=True, env=env)
    return python


def measure(python: Path, impl: str, call: str, n: int, workdir: str) -> float:
    """
    Run one timed loop in a fresh process; return its items/s.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.upper().startswith(("AI_FEEDBACK__", "LEX_"))
    }
    done = subprocess.run(
        [str(python), str(WORKER), impl, call, str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,  # no application.yaml here: the default configuration
        env=env,
    )
    rate: float = json.loads(done.stdout.strip().splitlines()[-1])["rate"]
    return rate


def spread(values: list[float]) -> str:
    """
    Format min/median/max items/s.
    """
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    """
    Alternate the implementations; print the table of medians and ratios.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer items (smoke run)")
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    print(
        f"bench_submit: Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), {n:,} ratings per run, {REPEATS} alternated runs"
    )
    pythons = {"upstream": upstream_python(), "ours": Path(sys.executable)}
    pythons["ours-sync"] = pythons["floor"] = pythons["ours"]
    rates: dict[tuple[str, str], list[float]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for repeat in range(REPEATS):
            for call in CALLS:
                for impl in IMPLS if repeat % 2 == 0 else reversed(IMPLS):
                    rate = measure(pythons[impl], impl, call, n, workdir)
                    rates.setdefault((impl, call), []).append(rate)
                    print(f"  run {repeat + 1}: {impl:9} {call:15} {rate:>10,.0f} items/s")
    rows = []
    for call in CALLS:
        base = rates["upstream", call]
        rows.append((call, "upstream 0.1.5008", spread(base), "1.00x", ""))
        for impl, label in (
            ("ours", "ai-feedback (default)"),
            ("ours-sync", "ai-feedback (sync)"),
            ("floor", "floor: checks + list"),
        ):
            ours = rates[impl, call]
            ratio = statistics.median(ours) / statistics.median(base)
            met = "met" if ratio >= TARGET else "NOT met"
            target = f">= {TARGET}x: {met}" if impl != "floor" else "(bound)"
            rows.append((call, label, spread(ours), f"{ratio:.2f}x", target))
    print_table(("call", "implementation", "items/s median (min-max)", "ratio", "target"), rows)
    print(f"\nWall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
