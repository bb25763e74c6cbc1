"""
Liveness, readiness and Prometheus metrics; no key needed.

- ``GET /healthz``: the process answers.
- ``GET /readyz``: the store answers a read within 2 s and the writer is not failing;
  503 otherwise, with the spool's depth and the age of its oldest item either way.
- ``GET /metrics``: Prometheus text: requests by route and status, and the write path
  (spool depth and oldest age, accepted, stored, failed, retries, store reachable).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ai_feedback._models import FeedbackFilter
from ai_feedback.exceptions import FeedbackError
from ai_feedback.server.errors import JSONBody
from ai_feedback.server.schemas import ReadyOut
from ai_feedback.server.service import service

__all__ = ["Metrics", "router"]

router = APIRouter(tags=["health"])
_READY_TIMEOUT = 2.0


class Metrics:
    """
    The service's Prometheus metrics, in a registry of its own.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ai_feedback_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ai_feedback_http_request_seconds",
            "HTTP request duration by route template",
            ["route"],
            registry=self.registry,
        )
        self._cache: dict[tuple[str, str, int], _Series] = {}
        self.gauges = {
            name: Gauge(f"ai_feedback_{name}", description, registry=self.registry)
            for name, description in (
                ("spool_depth", "Accepted items not yet stored"),
                ("spool_oldest_age_seconds", "Age of the oldest item waiting in the spool"),
                ("spool_capacity", "Items the spool holds before back-pressure"),
                ("dead_letters", "Items set aside (refused by the store or the pipeline)"),
                ("accepted", "Items accepted by this process"),
                ("stored", "Items stored by this process's writer"),
                ("failed", "Items set aside by this process's writer"),
                ("retries", "Store writes retried"),
                ("withdrawn", "Items not stored: a deletion made after their acceptance"),
                ("store_reachable", "1 when the last store write succeeded"),
            )
        }

    def counting(self, app: ASGIApp) -> ASGIApp:
        """
        Wrap ``app`` so that each HTTP request is counted by route template and status.
        """

        async def count(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = [500]

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                if method not in _METHODS:  # any client can invent methods: one series for all
                    method = "other"
                self._series(route, method, status[0]).record(time.perf_counter() - started)

        return count

    def _series(self, route: str, method: str, status: int) -> _Series:
        key = (route, method, status)
        series = self._cache.get(key)
        if series is None:  # the label lookups are done once per (route, method, status)
            series = _Series(
                self.requests.labels(route, method, str(status)), self.latency.labels(route)
            )
            self._cache[key] = series
        return series


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class _Series:
    __slots__ = ("_count", "_latency")

    def __init__(self, count: Any, latency: Any) -> None:  # noqa: ANN401 - prometheus children
        self._count = count
        self._latency = latency

    def record(self, seconds: float) -> None:
        self._count.inc()
        self._latency.observe(seconds)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """
    Answer while the process runs.
    """
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "The store is unavailable"}},
    summary="Readiness: the store answers",
)
async def readyz(request: Request) -> JSONBody:
    """
    Answer 200 when the store answers a read and the writer is not failing, else 503.
    """
    state = service(request)
    store_state = "ok"
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            await state.store.query(FeedbackFilter(owner_id="-readyz-"), limit=1)  # type: ignore[attr-defined]
    except (FeedbackError, TimeoutError, OSError) as exc:
        store_state = f"unavailable: {exc}"
    writer = await state.collector.status()
    ready = store_state == "ok" and writer.store_reachable is not False
    body = {
        "status": "ready" if ready else "unavailable",
        "store": store_state,
        "writer": writer.to_dict(),
    }
    return JSONBody(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """
    Return the metrics in Prometheus' text format.
    """
    state = service(request)
    registered: Metrics = state.extras["metrics"]
    status = await state.collector.status()
    values: dict[str, float | None] = {
        "accepted": status.accepted,
        "stored": status.stored,
        "failed": status.failed,
        "retries": status.retries,
        "withdrawn": status.withdrawn,
        "store_reachable": None
        if status.store_reachable is None
        else float(status.store_reachable),
    }
    if status.spool is not None:
        values |= {
            "spool_depth": status.spool.depth,
            "spool_oldest_age_seconds": status.spool.oldest_age_seconds or 0.0,
            "spool_capacity": status.spool.capacity,
            "dead_letters": status.spool.dead_letters,
        }
    for name, value in values.items():
        if value is not None:
            registered.gauges[name].set(value)
    return Response(generate_latest(registered.registry), media_type=CONTENT_TYPE_LATEST)
