"""
A small HTTP/1.1 load generator: keep-alive connections sending one prebuilt request.

Run as a process of its own (so that it does not share the server's interpreter):

    python _loadgen.py HOST PORT REQUEST_FILE COUNT CONNECTIONS

REQUEST_FILE holds the exact request bytes. Prints one JSON line: requests, seconds,
statuses and the p50/p99 latency in microseconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path


async def _connection(  # noqa: PLR0917 - one call site
    host: str, port: int, request: bytes, count: int, latencies: list[int], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter_ns
    for _ in range(count):
        started = clock()
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        latencies.append(clock() - started)
        statuses[int(status_line.split()[1])] += 1
    writer.close()


async def main(host: str, port: int, request: bytes, count: int, connections: int) -> None:
    """Send ``count`` requests over ``connections`` connections; print the figures."""
    latencies: list[int] = []
    statuses: Counter[int] = Counter()
    per = count // connections
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, per, latencies, statuses) for _ in range(connections))
    )
    seconds = time.perf_counter() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": seconds,
                "statuses": {str(k): v for k, v in statuses.items()},
                "p50_us": latencies[len(latencies) // 2] / 1000,
                "p99_us": latencies[int(len(latencies) * 0.99)] / 1000,
            }
        )
    )


if __name__ == "__main__":
    host, port, path, count, connections = sys.argv[1:6]
    asyncio.run(main(host, int(port), Path(path).read_bytes(), int(count), int(connections)))
