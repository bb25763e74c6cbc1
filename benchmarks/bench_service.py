"""
The HTTP service under load, against a bare FastAPI endpoint measured in the same run.

A real uvicorn server (one worker, SQLite store, durable acknowledgement, a key checked on
every request) and a bare FastAPI app that only parses the same JSON and answers 202 (or
207) run as processes of their own; a load generator in a third process sends keep-alive
HTTP/1.1 requests over loopback. Measured: single submits (requests/s, p50/p99) and
batches of 100 (items/s acknowledged, and until stored), each as a ratio to the bare
endpoint; the two servers alternate, 3 repetitions each, median (min-max).

Targets: single submits >= 0.5x the bare endpoint; batches >= 20,000 items/s into SQLite.

Run with ``uv run --no-sync python benchmarks/bench_service.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

from _common import print_table, run_hermetic

HERE = Path(__file__).resolve().parent
SECRET = "afk_bench_secret"  # noqa: S105 - the benchmark's own throw-away key
REPEATS = 3
CONNECTIONS = 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"x-api-key: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _start(args: list[str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_FEEDBACK")}
    process = subprocess.Popen(  # noqa: ASYNC220 - our own commands
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.05)
            else:
                return process
    msg = f"{args} did not start"
    raise RuntimeError(msg)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(60)


async def _load(
    port: int, request: bytes, count: int, connections: int, tmp: Path
) -> dict[str, Any]:
    path = tmp / "request.bin"
    path.write_bytes(request)
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "_loadgen.py"),
        "127.0.0.1",
        str(port),
        str(path),
        str(count),
        str(connections),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await done.communicate()
    return dict(json.loads(out))


async def _drained(port: int) -> None:
    async with httpx.AsyncClient() as client:
        while True:
            status = (await client.get(f"http://127.0.0.1:{port}/readyz")).json()
            if status["writer"]["spool"]["depth"] == 0:
                return
            await asyncio.sleep(0.02)


def _spread(values: list[float], fmt: str) -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


async def main(quick: bool) -> None:
    """Alternate the bare app and the service under the same loads."""
    singles, batches = (4_000, 100) if quick else (20_000, 400)
    tmp = Path.cwd()
    (tmp / "application.yaml").write_text(
        "ai_feedback:\n  store: sqlite\n  database_url: sqlite:///./bench.db\n  server:\n"
        "    api_keys:\n      - id: bench\n"
        f"        secret_sha256: {hashlib.sha256(SECRET.encode()).hexdigest()}\n"
        "        project: bench\n        scopes: [ingest, read]\n",
        encoding="utf-8",
    )
    one = _request(
        "/v1/feedback", orjson.dumps({"score": 4, "trace_id": "t-1", "context": {"model": "m"}})
    )
    items = [
        {"score": i % 5 + 1, "trace_id": f"t-{i}", "context": {"model": "m"}} for i in range(100)
    ]
    many = _request("/v1/feedback/batch", orjson.dumps({"items": items}))
    figures: dict[str, dict[str, list[float]]] = {"bare": {}, "ours": {}}
    for _ in range(REPEATS):
        for name in ("bare", "ours"):
            port = _free_port()
            if name == "bare":
                args = [
                    "uvicorn",
                    "_bare_app:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--app-dir",
                    str(HERE),
                ]
            else:
                args = ["ai_feedback", "serve", "--config", "application.yaml", "--port", str(port)]
            server = await _start(args, port, tmp)
            try:
                await _load(port, one, 2_000, CONNECTIONS, tmp)  # warm-up
                single = await _load(port, one, singles, CONNECTIONS, tmp)
                started = time.perf_counter()
                batch = await _load(port, many, batches, 8, tmp)
                acked = time.perf_counter() - started
                if name == "ours":
                    await _drained(port)
                stored = time.perf_counter() - started
            finally:
                _stop(server)
            rows = figures[name]
            for key, value in (
                ("rps", single["requests"] / single["seconds"]),
                ("p50", single["p50_us"]),
                ("p99", single["p99_us"]),
                ("items", batch["requests"] * 100 / acked),
                ("stored", batch["requests"] * 100 / stored),
            ):
                rows.setdefault(key, []).append(value)
            print(
                f"{name}: {single['statuses']} {batch['statuses']} "
                f"rps={rows['rps'][-1]:,.0f} batch items/s={rows['items'][-1]:,.0f}"
            )
    bare, ours = figures["bare"], figures["ours"]
    ratio = [o / b for o, b in zip(ours["rps"], bare["rps"], strict=True)]
    batch_ratio = [o / b for o, b in zip(ours["items"], bare["items"], strict=True)]
    print_table(
        ("measurement", "ai-feedback", "bare FastAPI", "ratio", "target"),
        [
            (
                "single submits, requests/s",
                _spread(ours["rps"], "{:,.0f}"),
                _spread(bare["rps"], "{:,.0f}"),
                _spread(ratio, "{:.2f}x"),
                ">= 0.5x",
            ),
            (
                "single submits, p50 / p99 us",
                f"{statistics.median(ours['p50']):,.0f} / {statistics.median(ours['p99']):,.0f}",
                f"{statistics.median(bare['p50']):,.0f} / {statistics.median(bare['p99']):,.0f}",
                "",
                "",
            ),
            (
                "batches of 100, items/s acknowledged",
                _spread(ours["items"], "{:,.0f}"),
                _spread(bare["items"], "{:,.0f}"),
                _spread(batch_ratio, "{:.2f}x"),
                ">= 20,000/s",
            ),
            (
                "batches of 100, items/s until stored",
                _spread(ours["stored"], "{:,.0f}"),
                "",
                "",
                "",
            ),
        ],
        title=(
            f"Service under load ({CONNECTIONS} connections for singles, 8 for batches; "
            f"median (min-max) of {REPEATS})"
        ),
    )


if __name__ == "__main__":
    run_hermetic("bench_service", __doc__ or "", main)
