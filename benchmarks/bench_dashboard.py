"""
The dashboard's pages over 1,000,000 items in PostgreSQL: server time per page.

1,000,000 items (100,000 with --quick) spread over 30 days, then (the worst case for a
24-hour window) over the last 24 hours (3 projects, 5 models, 2 providers, 70% ratings)
are generated in SQL into a schema of their own, and the hourly rollup is built from them
as the migration does. The service (``create_app``) runs
in-process on that schema and its pages are requested through ASGI, so the time is the
server's: authentication, the store queries and the rendering, without a network.

Measured, 7 repetitions each after one warm-up, min/median/max:
- the overview of the last 24 hours (target: < 300 ms), 7 days and 30 days;
- the feedback list's first page and its next page through the cursor (target: < 50 ms),
  and the next page filtered by model.
The overview's figures are checked equal to ``/v1/stats``.

Run with ``uv run --no-sync python benchmarks/bench_dashboard.py [--quick]`` (PostgreSQL
at ``AI_FEEDBACK_BENCH_POSTGRES_URL``, default the test server); the schema is dropped
at the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from _common import print_table, run_hermetic
from ai_feedback import FeedbackConfig
from ai_feedback.server import create_app
from ai_feedback.stores import _pg_schema as pg_sql

POSTGRES_URL = os.environ.get(
    "AI_FEEDBACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SPANS = {"30 days": 30 * 24, "24 hours": 24}
REPEATS = 7
SECRET = secrets.token_urlsafe(16)  # a key for this run only
PROJECT = "o0"

_FILL = """
INSERT INTO feedback (id, feedback_type, created_at, rating, session_id, model, provider,
                      owner_id, trace_id, value, context, metadata)
SELECT 'i' || lpad(i::text, 9, '0'), CASE WHEN i % 10 < 7 THEN 'rating' ELSE 'text' END,
       $2::timestamptz - i * $3::bigint * interval '1 microsecond',
       CASE WHEN i % 10 < 7 THEN i % 5 + 1 END, 's' || (i % 1000), 'm' || (i % 5),
       'p' || (i % 2), 'o' || (i % 3), 't' || i,
       CASE WHEN i % 10 < 7 THEN to_jsonb(i % 5 + 1) ELSE '"some text"'::jsonb END,
       jsonb_build_object('model', 'm' || (i % 5), 'provider', 'p' || (i % 2),
                          'owner_id', 'o' || (i % 3), 'session_id', 's' || (i % 1000),
                          'trace_id', 't' || i),
       '{}'
FROM generate_series(0, $1 - 1) AS i
"""


async def _fill(schema: str, n: int, hours: int) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        step = hours * 3600 * 1_000_000 // n
        await conn.execute(_FILL, n, datetime.now(UTC), step)
        await conn.execute("DELETE FROM feedback_rollup")
        rollup = pg_sql.ROLLUP_OF_ITEMS_SQL.format(items="feedback")
        await conn.execute(f"INSERT INTO feedback_rollup {rollup}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _timed(client: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return elapsed, response


async def _measure(client: httpx.AsyncClient, path: str) -> list[float]:
    await _timed(client, path)  # warm-up: connections, plans, templates
    return [(await _timed(client, path))[0] for _ in range(REPEATS)]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms ({min(values):.1f}-{max(values):.1f})"


def _check_figures(html: str, api: dict[str, Any]) -> None:
    shown = dict(re.findall(r'<data data-stat="([^"]+)" value="([^"]*)">', html))
    expected = {"total_count": api["total_count"], "average_rating": api["average_rating"]}
    for path, value in expected.items():
        if shown[path] != ("" if value is None else str(value)):
            raise SystemExit(f"overview {path}: {shown[path]} != /v1/stats {value}")


async def main(quick: bool) -> None:
    """
    Fill, then time the overview and the list's pages; once per spread of the items.
    """
    n = 100_000 if quick else 1_000_000
    rows: list[list[str]] = []
    for span, hours in SPANS.items():
        rows += await _pages(n, span, hours)
    print_table(
        ["items over", "page", "server time, median (min-max)", "target", "result"],
        rows,
        title=f"Summary: {n:,} items in PostgreSQL, project {PROJECT} (a third of them)",
    )


async def _pages(n: int, span: str, hours: int) -> list[list[str]]:
    schema = f"bench_dash_{secrets.token_hex(4)}"
    keys = [
        {
            "id": "bench",
            "secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "project": PROJECT,
            "scopes": ["read"],
        }
    ]
    config = FeedbackConfig(
        store="postgresql",
        database_url=POSTGRES_URL,
        database_schema=schema,
        server={"api_keys": keys, "token_secret": "b" * 40},
    )
    app = create_app(config)
    rows: list[list[str]] = []
    try:
        async with app.router.lifespan_context(app):
            started = time.perf_counter()
            await _fill(schema, n, hours)
            elapsed = time.perf_counter() - started
            print(f"{n:,} items over {span} and their rollup in {elapsed:.0f} s")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                client.cookies.set("ai_feedback_key", SECRET)
                _, page = await _timed(client, "/ui?window=24")
                api = await client.get("/v1/stats", headers={"x-api-key": SECRET})
                _check_figures(page.text, api.json())
                total = api.json()["total_count"]
                print(f"project {PROJECT}: {total:,} items in the last 24 hours")
                _, first = await _timed(client, "/ui/feedback")
                [next_page] = re.findall(r'href="([^"]+)" rel="next"', first.text)
                _, filtered = await _timed(client, "/ui/feedback?model=m3")
                [next_filtered] = re.findall(r'href="([^"]+)" rel="next"', filtered.text)
                cases = [
                    ("overview, 24 hours (per hour)", "/ui?window=24", 300.0),
                    ("overview, 7 days (per day)", "/ui?window=168", None),
                    ("overview, 30 days (per day)", "/ui?window=720", None),
                    ("list, first page (50)", "/ui/feedback", None),
                    ("list, next page (cursor)", next_page.replace("&amp;", "&"), 50.0),
                    ("list, next page, model filter", next_filtered.replace("&amp;", "&"), 50.0),
                ]
                for label, path, target in cases:
                    times = await _measure(client, path)
                    median = statistics.median(times)
                    verdict = "" if target is None else ("ok" if median < target else "MISSED")
                    print(f"{label}: {_spread(times)}")
                    aim = "" if target is None else f"< {target:g} ms"
                    rows.append([span, label, _spread(times), aim, verdict])
    finally:
        await _drop(schema)
    return rows


if __name__ == "__main__":
    run_hermetic("bench_dashboard", __doc__ or "", main)
