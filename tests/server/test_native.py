"""The native /v1 API: authentication first, projects kept apart, every route and its errors."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from ai_feedback import (
    Application,
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackStoreProtocol,
)
from ai_feedback.server import create_app, install
from ai_feedback.server.tokens import TokenClaims, mint
from tests.fakes import WrappedStore
from tests.server.conftest import (
    SECRETS,
    TOKEN_SECRET,
    LiveServer,
    bearer,
    key,
    server_config,
    stalled_request,
)


class _Stuck(WrappedStore):
    """A store whose writes wait for ``gate``: the spool fills up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def before_write(self, batch: list[Any]) -> None:
        await self.gate.wait()


RATING = {"score": 4, "trace_id": "t-1", "comment": "good", "context": {"model": "m1"}}


def _basic(name: str) -> dict[str, str]:
    secret = SECRETS[name][0]
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"a-all:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:afk_a_all_secret").decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest abc"},
        {"Authorization": "Bearer aft_forged.token"},
        {b"authorization": "Bearer aft_forged.t\u00e9".encode()},
        {b"x-api-key": "caf\u00e9".encode()},
        {b"authorization": "Basic caf\u00e9".encode()},
    ],
)
def test_no_valid_key_is_401_before_the_body_is_read(
    client: TestClient, headers: dict[str, str] | dict[bytes, bytes]
) -> None:
    """Without a valid key the answer is 401, whatever the body: bad JSON, huge or empty."""
    for body in (b"{not json", b"x" * 5_000_000, b""):
        response = client.post("/v1/feedback", content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
        assert "WWW-Authenticate" in response.headers
    for path in ("/v1/feedback", "/v1/stats", "/v1/feedback/some-id"):
        assert client.get(path, headers=headers).status_code == 401


@pytest.mark.parametrize("headers", [key("a-all"), bearer("a-all"), _basic("a-all")])
def test_each_way_of_sending_the_key_works(client: TestClient, headers: dict[str, str]) -> None:
    """x-api-key, Authorization: Bearer and Basic id:secret all authenticate."""
    response = client.post("/v1/feedback", json=RATING, headers=headers)
    assert response.status_code == 202, response.text
    assert client.get(f"/v1/feedback/{response.json()['id']}", headers=headers).status_code == 200


def test_a_key_without_the_scope_is_403(client: TestClient) -> None:
    """An ingest-only key cannot read; a read-only key cannot write or mint tokens."""
    assert client.get("/v1/stats", headers=key("a-ingest")).status_code == 403
    assert client.get("/v1/feedback", headers=key("a-ingest")).status_code == 403
    assert client.post("/v1/feedback", json=RATING, headers=key("a-read")).status_code == 403
    batch = {"items": [RATING]}
    assert client.post("/v1/feedback/batch", json=batch, headers=key("a-read")).status_code == 403
    token = {"trace_id": "t"}
    assert client.post("/v1/tokens", json=token, headers=key("a-read")).status_code == 403


def test_submit_then_read_back_every_field(client: TestClient) -> None:
    """An item comes back with its value, context (owner set from the key) and metadata."""
    body = {
        **RATING,
        "id": "client-1",
        "metadata": {"source": "web"},
        "created_at": "2026-11-30T10:00:00+00:00",
    }
    response = client.post("/v1/feedback", json=body, headers=key("a-ingest"))
    assert response.json() == {"id": "client-1"}
    item = client.get("/v1/feedback/client-1", headers=key("a-read")).json()
    assert item["type"] == "rating"
    assert item["value"] == 4
    assert item["context"] == {
        "model": "m1",
        "trace_id": "t-1",
        "comment": "good",
        "owner_id": "proj-a",
    }
    assert item["metadata"] == {"source": "web"}
    assert item["created_at"].startswith("2026-11-30T10:00:00")


def test_the_caller_cannot_choose_the_owner(client: TestClient) -> None:
    """context.owner_id naming another project is refused (422 naming the field)."""
    body = {**RATING, "context": {"owner_id": "proj-b"}}
    response = client.post("/v1/feedback", json=body, headers=key("a-all"))
    assert response.status_code == 422
    assert response.json()["field"] == "context.owner_id"
    same = {**RATING, "context": {"owner_id": "proj-a"}}
    assert client.post("/v1/feedback", json=same, headers=key("a-all")).status_code == 202


def test_projects_never_see_each_other(client: TestClient) -> None:
    """A key of project B neither reads, lists, counts nor overwrites project A's items."""
    item_id = client.post(
        "/v1/feedback", json={**RATING, "id": "shared"}, headers=key("a-all")
    ).json()["id"]
    assert client.get(f"/v1/feedback/{item_id}", headers=key("b-all")).status_code == 404
    assert client.get("/v1/feedback", headers=key("b-all")).json()["items"] == []
    assert client.get("/v1/stats", headers=key("b-all")).json()["total_count"] == 0
    assert client.get("/v1/stats", headers=key("a-all")).json()["total_count"] == 1
    overwrite = {**RATING, "id": "shared", "score": 1}
    assert client.post("/v1/feedback", json=overwrite, headers=key("b-all")).status_code == 202
    stored = client.get("/v1/feedback/shared", headers=key("a-all")).json()
    assert stored["value"] == 4  # B's item under A's id was a conflict, set aside
    assert client.get("/v1/feedback/shared", headers=key("b-all")).status_code == 404
    page = client.get("/v1/feedback", params={"trace_id": "t-1"}, headers=key("b-all")).json()
    assert page["items"] == []


def _cursor(position: list[Any]) -> str:
    """A cursor made by hand, in the service's encoding."""
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


def _every_page(client: TestClient, name: str, *, limit: int, most: int = 1000) -> list[str]:
    """The ids of GET /v1/feedback, following next_cursor (at most ``most`` pages)."""
    seen: list[str] = []
    cursor = None
    for _ in range(most):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/feedback", params=params, headers=key(name)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return seen


def test_listing_filters_and_pages(client: TestClient) -> None:
    """GET /v1/feedback filters, pages newest first with next_cursor, and rejects bad input."""
    base = datetime.now(UTC) - timedelta(hours=1)
    items = [
        {
            "type": "text" if i % 3 == 0 else "rating",
            **({"text": f"note {i}"} if i % 3 == 0 else {"score": i % 5 + 1}),
            "context": {"model": f"m{i % 2}", "session_id": f"s{i % 4}", "trace_id": f"t{i}"},
            "created_at": (base + timedelta(seconds=i)).isoformat(),
            "id": f"item-{i:02d}",
        }
        for i in range(25)
    ]
    response = client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
    assert response.status_code == 207
    assert response.json()["accepted"] == 25
    seen = _every_page(client, "a-read", limit=10)
    assert seen == [f"item-{i:02d}" for i in reversed(range(25))]
    texts = client.get(
        "/v1/feedback", params={"type": "text", "model": "m1"}, headers=key("a-read")
    )
    assert [i["id"] for i in texts.json()["items"]] == ["item-21", "item-15", "item-09", "item-03"]
    window = {
        "since": (base + timedelta(seconds=20)).isoformat(),
        "until": (base + timedelta(seconds=22)).isoformat(),
    }
    ranged = client.get("/v1/feedback", params=window, headers=key("a-read")).json()
    assert [i["id"] for i in ranged["items"]] == ["item-21", "item-20"]
    by_trace = client.get("/v1/feedback", params={"trace_id": "t7"}, headers=key("a-read")).json()
    assert [i["id"] for i in by_trace["items"]] == ["item-07"]
    for bad, field in (
        ({"cursor": "nonsense"}, "cursor"),
        ({"cursor": _cursor([-62135596800000000 - 1, "x"])}, "cursor"),  # before year 1
        ({"cursor": _cursor([0, "a\u0000b"])}, "cursor"),
        ({"cursor": _cursor([0, 7])}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"type": "vote"}, "type"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"since": "1700000000"}, "since"),  # seconds since 1970 are not ISO 8601
        ({"until": "2026-01-01"}, "until"),
        ({"model": ""}, "model"),
    ):
        response = client.get("/v1/feedback", params=bad, headers=key("a-read"))
        assert response.status_code == 422, bad
        assert response.json()["field"] == field


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_paging_is_exact_for_far_dates(tmp_path: Path, store: str) -> None:
    """Items a microsecond apart in years 2300 and 9000 page once each (no float rounding)."""
    config = server_config(tmp_path)
    if store == "memory":
        config = FeedbackConfig(store="memory", server=config.server.model_dump())
    with TestClient(create_app(config)) as client:
        moments = [
            f"{year}-01-01T00:00:00.00000{i}+00:00" for year in (2300, 9000) for i in range(5)
        ]
        items = [{"score": 1, "id": f"i{n}", "created_at": m} for n, m in enumerate(moments)]
        client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
        seen = _every_page(client, "a-all", limit=1, most=20)
        assert sorted(seen) == sorted(f"i{n}" for n in range(len(moments)))
        assert len(seen) == len(items)


def test_stats_match_the_library(client: TestClient) -> None:
    """/v1/stats returns what get_feedback_stats computes, over the project's items only."""
    for score, model in ((5, "m1"), (3, "m1"), (1, "m2")):
        client.post(
            "/v1/feedback", json={"score": score, "context": {"model": model}}, headers=key("a-all")
        )
    client.post("/v1/feedback", json={"score": 2}, headers=key("b-all"))
    stats = client.get("/v1/stats", headers=key("a-read")).json()
    assert (stats["total_count"], stats["average_rating"]) == (3, 3.0)
    assert stats["by_model"] == {
        "m1": {"count": 2, "average_rating": 4.0},
        "m2": {"count": 1, "average_rating": 1.0},
    }
    assert stats["rating"]["distribution"] == {"1": 1, "3": 1, "5": 1}
    one = client.get("/v1/stats", params={"model": "m1"}, headers=key("a-read")).json()
    assert one["total_count"] == 2
    bad = client.get("/v1/stats", params={"window_hours": 0}, headers=key("a-read"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "window_hours"
    nan = client.get("/v1/stats", params={"window_hours": "nan"}, headers=key("a-read"))
    assert (nan.status_code, nan.json()["rule"]) == (422, "Input should be a finite number")


def test_a_batch_without_async_processing_reports_a_conflict_and_stores_the_rest(
    tmp_path: Path,
) -> None:
    """Stored before answering, a batch still answers each item: one conflict loses nothing."""
    config = server_config(tmp_path, top={"async_processing": False})
    with TestClient(create_app(config)) as sync_client:
        first = sync_client.post(
            "/v1/feedback", json={"id": "c-1", "score": 1}, headers=key("a-all")
        )
        assert first.status_code == 202
        items = [{"id": "c-2", "score": 1}, {"id": "c-1", "score": 3}, {"id": "c-3", "score": 1}]
        batch = sync_client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
        assert batch.status_code == 207, batch.text
        results = batch.json()["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
        assert (results[1]["error"]["error"], results[1]["error"]["ids"]) == ("conflict", ["c-1"])
        for item_id, score in (("c-1", 1), ("c-2", 1), ("c-3", 1)):
            stored = sync_client.get(f"/v1/feedback/{item_id}", headers=key("a-all"))
            assert (stored.status_code, stored.json()["value"]) == (200, score)


def test_json_integers_beyond_64_bits_are_refused_not_rounded(client: TestClient) -> None:
    """A huge integer is refused naming its field, not stored as a float; labels say input."""
    for body, status, field in (
        ({"score": 1, "metadata": {"n": 10**30}}, 422, "metadata.n"),
        ({"score": 1, "metadata": {"n": 10**400}}, 422, "metadata.n"),
        ({"type": "label", "label": "x", "input": {"n": 2**64}}, 422, "input.n"),
        ({"type": "label", "label": "x", "input": {"a": "\u0000"}}, 422, "input.a"),
        ({"type": "label", "label": "x", "input": "x" * 60_000}, 413, "input"),
    ):
        answer = client.post("/v1/feedback", json=body, headers=key("a-all"))
        assert (answer.status_code, answer.json()["field"]) == (status, field), answer.text
    deep = b"[" * 2000 + b'"1234567890123456789012"' + b"]" * 2000  # a long digit run too
    answer = client.post(
        "/v1/feedback", content=deep, headers={"content-type": "application/json", **key("a-all")}
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_json")
    kept = client.post(
        "/v1/feedback", json={"score": 1, "metadata": {"n": 2**64 - 1}}, headers=key("a-all")
    )
    item = client.get(f"/v1/feedback/{kept.json()['id']}", headers=key("a-all")).json()
    assert item["metadata"]["n"] == 2**64 - 1
    assert client.get("/v1/stats", headers=key("a-all")).json()["total_count"] == 1


def test_a_batch_reports_each_item(client: TestClient) -> None:
    """A batch answers 207 with one result per item; invalid ones are named, the rest stored."""
    items = [RATING, {"score": "five"}, {"type": "text", "text": "hi", "id": "t-x"}, "nope"]
    response = client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert body["results"][1]["error"]["field"] == "score"
    assert (body["results"][3]["index"], body["results"][3]["error"]["field"]) == (3, "payload")
    again = client.post("/v1/feedback/batch", json={"items": [items[2]]}, headers=key("a-all"))
    assert again.json()["results"][0]["id"] == "t-x"  # the same id again: idempotent
    assert (
        len(
            client.get("/v1/feedback", params={"type": "text"}, headers=key("a-all")).json()[
                "items"
            ]
        )
        == 1
    )
    extra = client.post(
        "/v1/feedback/batch", json={"items": [RATING], "extra": 1}, headers=key("a-all")
    )
    assert (extra.status_code, extra.json()["field"]) == (422, "extra")
    bad_batches: list[Any] = [{"items": []}, {"items": "x"}, [], {"items": [RATING] * 1001}]
    for bad in bad_batches:
        assert client.post("/v1/feedback/batch", json=bad, headers=key("a-all")).status_code == 422


@pytest.mark.parametrize(
    ("content", "headers", "status", "error"),
    [
        (b'{"score": 4}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (
            b"score=4",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (b"", {"content-type": "application/json"}, 400, "bad_json"),
        (b"{nope", {"content-type": "application/json"}, 400, "bad_json"),
        (b'{"score": true}', {"content-type": "application/json"}, 422, "invalid"),
        (
            b'{"type": "rating", "processor": "text", "score": 3}',
            {"content-type": "application/json"},
            422,
            "invalid",
        ),
        (
            b'{"type": "text", "text": "' + b"x" * 10_001 + b'"}',
            {"content-type": "application/json"},
            413,
            "too_large",
        ),
    ],
)
def test_bad_bodies_get_clear_errors(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    """Each bad body answers its status with a body naming the problem; nothing is stored."""
    response = client.post("/v1/feedback", content=content, headers={**headers, **key("a-all")})
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert client.get("/v1/stats", headers=key("a-all")).json()["total_count"] == 0


DEEP = "[" * 1000 + "]" * 1000  # valid JSON, deeper than repr() can go


@pytest.mark.parametrize(
    ("route", "body", "auth", "field"),
    [
        ("/v1/feedback", '{"score": %s}', key, "score"),
        ("/v1/feedback/batch", '{"items": [{"score": 1}, {"score": 1, "id": %s}]}', key, "id"),
        ("/feedback", '{"run_id": "9b2c1c1e-55b1-4c8e-9a8f-2f9a3f1d7b21", "key": %s}', key, "key"),
        ("/api/3.0/mlflow/traces/t1/assessments", '{"assessment": %s}', bearer, "assessment"),
    ],
)
def test_a_deeply_nested_bad_value_is_named_not_a_500(
    client: TestClient, route: str, body: str, auth: Any, field: str
) -> None:
    """A refused value nested 1,000 levels deep gets the field's error, not a server error."""
    response = client.post(
        route,
        content=(body % DEEP).encode(),
        headers={"content-type": "application/json", **auth("a-all")},
    )
    error = response.json()["results"][1]["error"] if "batch" in route else response.json()
    assert response.status_code in {207, 422}, response.text
    assert error["field"] == field
    assert "[[[" in error["message"]


def test_an_overlong_comment_is_named_where_it_was_sent(client: TestClient) -> None:
    """A rating's comment is `comment`; a comment in another item's context, context.comment."""
    long = "x" * 10_001
    for body, field in (
        ({"score": 3, "comment": long}, "comment"),
        ({"type": "text", "text": "t", "context": {"comment": long}}, "context.comment"),
    ):
        response = client.post("/v1/feedback", json=body, headers=key("a-all"))
        assert (response.status_code, response.json()["field"]) == (413, field)


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    """A body past server.max_body_bytes answers 413 (from Content-Length or while reading)."""
    with TestClient(create_app(server_config(tmp_path, max_body_bytes=2048))) as client:
        big = {"type": "text", "text": "x" * 3000}
        response = client.post("/v1/feedback", json=big, headers=key("a-all"))
        assert response.status_code == 413
        assert "max_body_bytes" in response.json()["message"]

        def chunks() -> Any:
            yield b'{"type": "text", "text": "'
            yield b"y" * 4000
            yield b'"}'

        streamed = client.post(
            "/v1/feedback",
            content=chunks(),
            headers={"content-type": "application/json", **key("a-all")},
        )
        assert streamed.status_code == 413


def test_browser_tokens(client: TestClient) -> None:
    """A token submits for its trace only, until it expires; forged or misused ones fail."""
    minted = client.post(
        "/v1/tokens",
        json={
            "trace_id": "trace-9",
            "session_id": "s-9",
            "feedback_key": "thumbs",
            "type": "rating",
        },
        headers=key("a-ingest"),
    )
    assert minted.status_code == 201
    token = minted.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    accepted = client.post("/v1/feedback", json={"score": 1}, headers=auth)
    assert accepted.status_code == 202
    item = client.get(f"/v1/feedback/{accepted.json()['id']}", headers=key("a-read")).json()
    assert item["context"]["trace_id"] == "trace-9"
    assert item["context"]["session_id"] == "s-9"
    assert item["context"]["owner_id"] == "proj-a"
    assert item["metadata"]["key"] == "thumbs"
    assert item["metadata"]["token_id"] == minted.json()["token_id"]
    other_trace = client.post("/v1/feedback", json={"score": 1, "trace_id": "other"}, headers=auth)
    assert other_trace.status_code == 403
    other_type = client.post("/v1/feedback", json={"type": "text", "text": "x"}, headers=auth)
    assert other_type.status_code == 403
    other_session = {"score": 1, "context": {"session_id": "s-other"}}
    assert client.post("/v1/feedback", json=other_session, headers=auth).status_code == 403
    assert client.get("/v1/stats", headers=auth).status_code == 403
    assert (
        client.post("/v1/feedback/batch", json={"items": [RATING]}, headers=auth).status_code == 403
    )
    body, _, signature = token.partition(".")
    forged = {"Authorization": f"Bearer {body}x.{signature}"}
    assert client.post("/v1/feedback", json={"score": 1}, headers=forged).status_code == 401
    expired = mint(TOKEN_SECRET, TokenClaims("proj-a", "trace-9", time.time() - 1, "old"))
    response = client.post(
        "/v1/feedback", json={"score": 1}, headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    foreign = mint("s" * 40, TokenClaims("proj-a", "trace-9", time.time() + 60, "x"))
    assert (
        client.post(
            "/v1/feedback", json={"score": 1}, headers={"Authorization": f"Bearer {foreign}"}
        ).status_code
        == 401
    )
    both = {"score": 1, "trace_id": "trace-9", "context": {"trace_id": "t-evil"}}
    assert client.post("/v1/feedback", json=both, headers=auth).status_code == 403
    for wanted, field in (
        ({"trace_id": "t", "feedback_key": "a\u0000b"}, "feedback_key"),
        ({"trace_id": "t", "feedback_key": "   "}, "feedback_key"),
        ({"trace_id": "t", "session_id": " "}, "session_id"),
        ({"trace_id": "t", "expires_in": "5"}, "expires_in"),
        ({"trace_id": "t", "expires_in": True}, "expires_in"),
    ):
        refused = client.post("/v1/tokens", json=wanted, headers=key("a-ingest"))
        assert (refused.status_code, refused.json()["field"]) == (422, field), wanted
    too_long = client.post(
        "/v1/tokens", json={"trace_id": "t", "expires_in": 10**9}, headers=key("a-ingest")
    )
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "expires_in"
    assert (
        client.post("/v1/tokens", json={"trace_id": ""}, headers=key("a-ingest")).status_code == 422
    )


def test_health_readiness_and_metrics(client: TestClient) -> None:
    """/healthz, /readyz (store and spool status) and /metrics answer without a key."""
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/v1/feedback", json=RATING, headers=key("a-all"))
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["writer"]["mode"] == "durable"
    assert ready.json()["writer"]["spool"]["capacity"] == 1_000_000
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert "ai_feedback_spool_depth" in text
    assert "ai_feedback_accepted 1.0" in text
    assert "ai_feedback_withdrawn 0.0" in text
    assert ready.json()["writer"]["withdrawn"] == 0
    assert (
        'ai_feedback_http_requests_total{method="POST",route="/v1/feedback",status="202"}' in text
    )
    for number in range(50):  # invented methods share one series
        client.request(f"M{number:03d}", "/healthz")
    text = client.get("/metrics").text
    assert "M001" not in text
    assert 'method="other",route="/healthz"' in text


def test_no_keys_means_no_start_unless_insecure(tmp_path: Path) -> None:
    """Without keys the app refuses to start; --insecure-no-auth serves as project 'default'."""
    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{tmp_path / 'f.db'}")
    with pytest.raises(FeedbackConfigurationError, match=r"server\.api_keys"):
        create_app(config)
    with TestClient(create_app(config, insecure_no_auth=True)) as client:
        item_id = client.post("/v1/feedback", json=RATING).json()["id"]
        assert client.get(f"/v1/feedback/{item_id}").json()["context"]["owner_id"] == "default"


def test_start_up_warnings_are_logged_once_per_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Building an app logs nothing; each start warns once of no auth and of no signing key."""
    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{tmp_path / 'f.db'}")
    caplog.set_level("WARNING", logger="ai_feedback")
    app = create_app(config, insecure_no_auth=True)
    assert caplog.messages == []
    with TestClient(app):
        pass
    assert sum("Authentication is OFF" in m for m in caplog.messages) == 1
    assert sum("token_secret is not set" in m for m in caplog.messages) == 1
    caplog.clear()
    with TestClient(create_app(server_config(tmp_path))):  # keys and a signing key
        pass
    assert not [m for m in caplog.messages if "Authentication" in m or "token_secret" in m]


def test_cors_preflight_for_configured_origins(tmp_path: Path) -> None:
    """A configured origin passes the CORS preflight; another gets no allow-origin header."""
    config = server_config(tmp_path, cors_origins=["https://app.example"])
    with TestClient(create_app(config)) as client:
        request = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        allowed = client.options("/v1/feedback", headers=request)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options(
            "/v1/feedback", headers={**request, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_openapi_describes_every_route(client: TestClient) -> None:
    """/openapi.json documents every route, its request body and its error responses."""
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/v1/feedback",
        "/v1/feedback/batch",
        "/v1/feedback/{item_id}",
        "/v1/stats",
        "/v1/tokens",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    submit = paths["/v1/feedback"]["post"]
    assert "requestBody" in submit
    assert {"401", "403", "413", "415", "422", "429"} <= set(submit["responses"])
    assert "RatingIn" in document["components"]["schemas"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert {"apiKey": []} in submit["security"]
    assert "security" not in paths["/healthz"]["get"]
    assert "security" not in paths["/info"]["get"]
    assert "security" not in paths["/feedback/tokens/{token_id}"]["post"]
    assert {"basic": []} in paths["/api/public/scores"]["post"]["security"]


def test_a_body_that_does_not_arrive_is_408(tmp_path: Path) -> None:
    """A client that sends its headers and then trickles (or stops) gets 408, not a held slot."""
    config = server_config(tmp_path, body_timeout_seconds=1)
    with LiveServer(create_app(config)) as url:
        head = (
            "POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"x-api-key: {SECRETS['a-all'][0]}\r\nContent-Length: 100\r\n\r\n"
        )
        received, waited = stalled_request(url, head, b'{"score"', until=b'"error"')
    assert waited < 5
    assert received.startswith(b"HTTP/1.1 408")
    assert b'"error":"timeout"' in received


def test_a_full_spool_is_429_with_retry_after(tmp_path: Path) -> None:
    """When the spool stays full the service answers 429 with Retry-After."""
    store = _Stuck()
    app = FastAPI()
    application = Application(handle_signals=False)
    application.container.bind(FeedbackStoreProtocol, store)
    config = server_config(tmp_path, {"spool_max_items": 2, "backpressure_wait_ms": 50.0})
    install(app, config, application=application)
    with TestClient(app) as client:
        codes = [
            client.post("/v1/feedback", json={"score": s}, headers=key("a-all")).status_code
            for s in (1, 2, 3)
        ]
        assert codes == [202, 202, 429]
        refused = client.post("/v1/feedback", json={"score": 4}, headers=key("a-all"))
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "overloaded"
        store.gate.set()


def _frozen(thing: object) -> bool:
    """Whether ``thing`` sits in the collector's permanent generation (gc.freeze)."""
    import gc  # noqa: PLC0415

    return gc.is_tracked(thing) and not any(o is thing for o in gc.get_objects())


def test_the_service_keeps_its_start_up_objects_out_of_full_collections(tmp_path: Path) -> None:
    """create_app freezes start-up objects while it serves; two apps share it; the host's stay."""
    import gc  # noqa: PLC0415

    for name in "bcd":
        (tmp_path / name).mkdir()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(server_config(tmp_path))) as client:
        state = client.app.state.ai_feedback  # type: ignore[attr-defined]
        assert _frozen(state)
        with TestClient(create_app(server_config(tmp_path / "b"))) as other:
            assert other.get("/healthz").status_code == 200
        assert _frozen(state)  # the second app's stop left the first app's objects frozen
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
    assert not _frozen(state)
    host = [object()]  # always tracked by the collector
    gc.freeze()  # as a host that froze its own objects before serving
    try:
        with TestClient(create_app(server_config(tmp_path / "c"))):
            pass
        assert _frozen(host)
    finally:
        gc.unfreeze()
    with TestClient(install_app(tmp_path / "d")) as hosted:
        assert not _frozen(hosted.app.state.ai_feedback)  # type: ignore[attr-defined]


def install_app(tmp_path: Path, **options: Any) -> FastAPI:
    """A FastAPI app of one's own with the service installed."""
    host = FastAPI(**options)
    install(host, server_config(tmp_path))
    return host


def test_the_submission_routes_are_documented_and_skip_dependency_resolution(
    client: TestClient,
) -> None:
    """In create_app's app the POST routes skip dependency resolution, documented as before."""
    from ai_feedback.server.service import RequestRoute  # noqa: PLC0415

    fast = [r for r in client.app.routes if isinstance(r, RequestRoute)]  # type: ignore[attr-defined]
    assert sorted(r.path for r in fast) == ["/v1/feedback", "/v1/feedback/batch"]
    document = client.get("/openapi.json").json()
    for path in ("/v1/feedback", "/v1/feedback/batch"):
        operation = document["paths"][path]["post"]
        assert {"202", "207"} & set(operation["responses"])
        assert "401" in operation["responses"]
        assert "requestBody" in operation
    answer = client.post("/v1/feedback", json={"score": 3}, headers=key("a-ingest"))
    assert answer.status_code == 202, answer.text
    bad = client.post("/v1/feedback", json={"score": "x"}, headers=key("a-ingest"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "score"


def _gate() -> None:
    raise GateClosedError


class GateClosedError(Exception):
    """Raised by the host's own dependency."""


def _gated(app: FastAPI) -> FastAPI:
    @app.exception_handler(GateClosedError)
    async def teapot(request: object, exc: GateClosedError) -> JSONResponse:
        return JSONResponse({"gate": True}, status_code=418)

    return app


@pytest.mark.parametrize("how", ["install", "include_router"])
def test_your_apps_own_dependencies_run_on_every_route(tmp_path: Path, how: str) -> None:
    """Dependencies of your app (install) or of the include run on the submissions too."""
    from ai_feedback.server import feedback_router  # noqa: PLC0415

    if how == "install":
        app = _gated(install_app(tmp_path, dependencies=[Depends(_gate)]))
        prefix = ""
    else:
        app = _gated(FastAPI())
        install(app, server_config(tmp_path))
        app.include_router(feedback_router(), prefix="/fb", dependencies=[Depends(_gate)])
        prefix = "/fb"
    with TestClient(app) as client:
        for method, path in (
            ("GET", "/healthz"),
            ("GET", "/v1/feedback"),
            ("POST", "/v1/feedback"),
            ("POST", "/v1/feedback/batch"),
        ):
            answer = client.request(method, prefix + path, json={"score": 1}, headers=key("a-all"))
            assert answer.status_code == 418, (method, path, answer.status_code)


def test_an_app_mounted_without_its_lifespan_answers_503_naming_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mounted app gets no lifespan: its routes say so (503 naming install()), not 500.

    With a key, without one and with a bad body; liveness still answers; the reason is
    logged once (clients retry a 503); the store is never opened.
    """
    outer = FastAPI()
    outer.mount("/fb", create_app(server_config(tmp_path)))
    with TestClient(outer) as client:
        for method, path, headers, body in (
            ("POST", "/fb/v1/feedback", key("a-all"), {"type": "rating", "score": 4}),
            ("POST", "/fb/v1/feedback", {}, {"type": "rating", "score": 4}),
            ("POST", "/fb/v1/feedback", key("a-all"), "not json"),
            ("POST", "/fb/v1/feedback/batch", key("a-all"), [{"type": "rating", "score": 4}]),
            ("GET", "/fb/v1/feedback", key("a-all"), None),
            ("GET", "/fb/v1/stats", key("a-read"), None),
            ("GET", "/fb/readyz", {}, None),
            ("GET", "/fb/ui/login", {}, None),
            ("GET", "/fb/metrics", {}, None),
            ("GET", "/fb/v1/export?format=raw", key("a-read"), None),
            ("DELETE", "/fb/v1/feedback?trace_id=t", key("b-all"), None),
            ("POST", "/fb/api/public/scores", key("a-all"), [{"value": 1, "traceId": "t"}]),
            ("POST", "/fb/feedback", key("a-all"), {"run_id": "r", "score": 1}),
            ("POST", "/fb/api/3.0/mlflow/traces/t/assessments", {}, {"assessment": {}}),
        ):
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.json()["error"] == "not_started"
            assert "app.mount()" in answer.json()["message"]
            assert "install(app, config, prefix=" in answer.json()["message"]
        assert client.get("/fb/healthz").status_code == 200
    logged = [r for r in caplog.records if "has not started" in r.getMessage()]
    assert [r.levelname for r in logged] == ["ERROR"]
    assert not (tmp_path / "feedback.db").exists()  # the store was never opened
    # The same app with its lifespan run serves the same request.
    with TestClient(create_app(server_config(tmp_path))) as client:
        rating = {"type": "rating", "score": 4}
        answer = client.post("/v1/feedback", json=rating, headers=key("a-all"))
        assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("async_processing", [True, False])
def test_a_batch_refuses_a_different_item_under_an_id_it_already_holds(
    tmp_path: Path, async_processing: bool
) -> None:
    """A different item under an id the batch already holds is a 409 in its own result.

    Not accepted and then set aside; the same item twice is idempotent.
    """
    config = server_config(tmp_path, top={"async_processing": async_processing})
    with TestClient(create_app(config)) as batch_client:
        items = [
            {"id": "d-1", "score": 1},
            {"id": "d-1", "score": 4},
            {"id": "d-2", "score": 2},
            {"id": "d-2", "score": 2.0},
        ]
        batch = batch_client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
        assert batch.status_code == 207, batch.text
        results = batch.json()["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "accepted"]
        error = results[1]["error"]
        assert (error["error"], error["ids"]) == ("conflict", ["d-1"])
        assert "earlier in this batch" in error["message"]
        for item_id, score in (("d-1", 1), ("d-2", 2)):
            stored = batch_client.get(f"/v1/feedback/{item_id}", headers=key("a-all"))
            assert (stored.status_code, stored.json()["value"]) == (200, score)
