"""Tests of the ASGI capture middleware and feedback endpoint in a real Starlette app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from ai_feedback import (
    Application,
    FeedbackAuthorizationError,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackModule,
    FeedbackType,
    MemoryFeedbackStore,
    RejectFeedback,
    current_context_id,
)
from ai_feedback.asgi import (
    CONTEXT_HEADER,
    FeedbackCaptureMiddleware,
    FeedbackEndpoint,
    FeedbackRequest,
    from_state,
)
from tests.fakes import FlakyStore


def allow_key(*, request: FeedbackRequest | None, payload: Mapping[str, Any]) -> bool:
    """Sync authorize: the request must carry the right API key."""
    return request is not None and request.headers.get("x-api-key") == "secret"


async def allow_key_async(*, request: FeedbackRequest | None, payload: Mapping[str, Any]) -> bool:
    """Async authorize with the same rule."""
    await asyncio.sleep(0)
    return allow_key(request=request, payload=payload)


async def chat(request: Request) -> JSONResponse:
    """A model endpoint: upper-cases the question, or crashes on request."""
    body = await request.json()
    if body.get("boom"):
        raise RuntimeError("model crashed")
    return JSONResponse({"answer": body["question"].upper(), "context_id": current_context_id()})


async def stats(request: Request) -> JSONResponse:
    """Expose statistics and the latest items for the test."""
    collector: FeedbackCollector = request.state.feedback
    figures = await collector.get_feedback_stats()  # writes what was accepted first
    latest = await collector.store.find_by_type(FeedbackType.RATING, limit=10)
    return JSONResponse(
        {
            "stats": figures,
            "ratings": [item.to_dict() for item in latest],
            "failures": len(collector.failures),
        }
    )


def make_app(authorize: Any) -> Starlette:
    """A Starlette app that boots ai-feedback in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        config = FeedbackConfig(async_processing=True, batch_max_delay_ms=1)
        async with Application.boot(modules=[FeedbackModule.configure(config)]) as feedback:
            collector = await feedback.container.resolve(FeedbackCollector)
            collector.pipeline.add_step(_no_casinos)
            yield {"feedback": collector}

    return Starlette(
        routes=[
            Route("/chat", chat, methods=["POST"]),
            Route("/stats", stats),
            Route("/plain", lambda request: PlainTextResponse("hello")),
            Mount("/feedback", FeedbackEndpoint(from_state("feedback"), authorize=authorize)),
        ],
        middleware=[
            Middleware(
                FeedbackCaptureMiddleware,
                collector=from_state("feedback"),
                exclude_paths=("/feedback", "/stats"),
            )
        ],
        lifespan=lifespan,
    )


def _no_casinos(item: Any) -> Any:
    if item.feedback_type is FeedbackType.TEXT and "casino" in item.value:
        raise RejectFeedback("spam")
    return item


@pytest.fixture(params=[allow_key, allow_key_async], ids=["sync-authorize", "async-authorize"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A TestClient with the lifespan running."""
    with TestClient(make_app(request.param)) as test_client:
        yield test_client


KEY = {"x-api-key": "secret"}


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_request_is_captured_and_joined_to_feedback(client: TestClient) -> None:
    """A chat exchange is captured under the header's id and joined to its feedback."""
    response = client.post("/chat", json={"question": "why?"})
    assert response.status_code == 200
    context_id = response.headers[CONTEXT_HEADER]
    assert response.json()["context_id"] == context_id  # handlers see the id too
    sent = client.post(
        "/feedback/",
        json={"trace_id": context_id, "score": 1, "comment": "too short"},
        headers=KEY,
    )
    assert sent.status_code == 202
    item_id = sent.json()["id"]
    body = client.get("/stats").json()
    assert body["stats"]["total_count"] == 1
    [rating] = body["ratings"]
    assert rating["id"] == item_id
    captured = rating["context"]["captured"]
    assert captured["name"] == "POST /chat"
    assert captured["input"] == {"question": "why?"}
    assert captured["output"] == {"answer": "WHY?", "context_id": context_id}
    assert captured["extra"]["status"] == 200


def test_crashing_request_is_captured_with_its_error(client: TestClient) -> None:
    """An exception in the app is recorded and still propagates to the server."""
    with pytest.raises(RuntimeError, match="model crashed"):
        client.post("/chat", json={"boom": True})
    collector = client.app_state["feedback"]
    [capture] = [c for _, c in collector.captures._entries.values()]
    assert capture.error == "RuntimeError('model crashed')"
    assert capture.input == {"boom": True}


def test_non_json_bodies_and_query_strings_are_captured(client: TestClient) -> None:
    """Plain text responses and query strings are kept as text."""
    response = client.get("/plain?x=1")
    capture = client.app_state["feedback"].captures.get(response.headers[CONTEXT_HEADER])
    assert capture.output == "hello"
    assert capture.extra == {"status": 200, "query": "x=1"}


def test_excluded_paths_are_not_captured(client: TestClient) -> None:
    """Requests under exclude_paths carry no context header."""
    assert CONTEXT_HEADER not in client.get("/stats").headers


def test_denied_submission_is_forbidden_before_processing(client: TestClient) -> None:
    """Without the key the endpoint answers 403 and nothing is validated or stored."""
    response = client.post("/feedback/", json={"score": "not even a number"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert client.get("/stats").json()["stats"]["total_count"] == 0


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"score": "five"}, 422, "invalid", "score"),
        ({"type": "text", "text": "x" * 10_001}, 413, "too_large", "text"),
        ({"type": "text", "tex": "hi"}, 422, "invalid", "tex"),
        (["not", "an", "object"], 422, "invalid", "payload"),
        ({"score": 1, "context": _deep(300)}, 422, "invalid", "context"),
        ({"type": "rating", "processor": "text", "score": 3}, 422, "invalid", "processor"),
        ({"score": 1, "metadata": {"n": 10**30}}, 422, "invalid", "metadata"),
        ({"score": -(2**63) - 1}, 422, "invalid", "score"),
    ],
)
def test_bad_payloads_get_clear_errors(
    client: TestClient, body: Any, status: int, error: str, field: str
) -> None:
    """Invalid payloads answer 4xx naming the field and the rule; nothing is stored."""
    response = client.post("/feedback/", json=body, headers=KEY)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["field"].split(".")[0] == field
    assert "rule" in response.json()
    assert client.get("/stats").json()["stats"]["total_count"] == 0


def test_malformed_json_and_wrong_method(client: TestClient) -> None:
    """Broken JSON answers 400; GET answers 405."""
    bad = client.post("/feedback/", content=b"{nope", headers=KEY)
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_json"
    assert client.get("/feedback/").status_code == 405


def test_rejected_by_a_step_in_async_mode_is_accepted_then_reported(client: TestClient) -> None:
    """With async processing a step's rejection happens later, in the failure report."""
    response = client.post("/feedback/", json={"type": "text", "text": "casino"}, headers=KEY)
    assert response.status_code == 202
    assert client.get("/stats").json()["failures"] == 1


async def test_endpoint_handle_and_body_limit() -> None:
    """handle() works without ASGI; a too-large body answers 413."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    endpoint = FeedbackEndpoint(collector, max_body_bytes=50)
    assert "authorize=None" in repr(endpoint)
    result = await endpoint.handle({"score": 3})
    assert await collector.store.get(result["id"]) is not None  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        big = await http.post("/", json={"type": "text", "text": "x" * 100})
        assert big.status_code == 413
        ok = await http.post("/", json={"score": 1})
        assert ok.status_code == 202


async def test_handle_denies_with_the_authorization_error() -> None:
    """handle() raises FeedbackAuthorizationError when authorize says no."""
    collector = FeedbackCollector(MemoryFeedbackStore(), FeedbackConfig(async_processing=False))
    endpoint = FeedbackEndpoint(collector, authorize=allow_key)
    with pytest.raises(FeedbackAuthorizationError, match="denied"):
        await endpoint.handle({"score": 3})
    assert len(collector.store) == 0  # type: ignore[arg-type]


async def test_storage_failure_maps_to_503() -> None:
    """In sync mode a store refusal answers 503 storage_unavailable."""
    collector = FeedbackCollector(FlakyStore(5), FeedbackConfig(async_processing=False))
    transport = httpx.ASGITransport(app=FeedbackEndpoint(collector))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", json={"score": 1})
    assert response.status_code == 503
    assert response.json()["error"] == "storage_unavailable"


async def test_in_sync_mode_a_step_rejecting_is_422_and_a_step_failing_is_500() -> None:
    """Without async processing the steps run in the request: their outcome is its answer."""

    def reject(item: FeedbackItem) -> FeedbackItem:
        if item.value == 1:
            msg = "one is not allowed"
            raise RejectFeedback(msg)
        if item.value == 2:
            msg = "step crashed"
            raise RuntimeError(msg)
        return item

    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    collector.pipeline.add_step(reject)
    transport = httpx.ASGITransport(app=FeedbackEndpoint(collector))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        rejected = await http.post("/", json={"score": 1})
        failed = await http.post("/", json={"score": 2})
        stored = await http.post("/", json={"score": 3})
    assert (rejected.status_code, rejected.json()["error"]) == (422, "rejected")
    assert "one is not allowed" in rejected.json()["message"]
    assert (failed.status_code, failed.json()["error"]) == (500, "processing_failed")
    assert stored.status_code == 202
    assert len(store) == 1


async def test_capture_failure_never_breaks_the_request() -> None:
    """If the collector cannot be found, the request still succeeds (the error is logged)."""
    app = FeedbackCaptureMiddleware(PlainTextResponse("fine"), collector=from_state("missing"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/")
    assert response.text == "fine"
