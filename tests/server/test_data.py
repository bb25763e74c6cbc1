"""GET /v1/export and DELETE /v1/feedback: streamed, authorized, and scoped to the project."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from tests.server.conftest import key


def _rated(client: TestClient, who: str, n: int, session: str, score: int = 5) -> list[str]:
    ids = []
    for i in range(n):
        body = {
            "type": "rating",
            "score": score,
            "trace_id": f"{session}-t{i}",
            "context": {
                "session_id": session,
                "captured": {"input": f"{who} question {i}", "output": f"{who} answer {i}"},
            },
        }
        response = client.post("/v1/feedback", json=body, headers=key(who))
        assert response.status_code == 202
        ids.append(response.json()["id"])
    return ids


def _rows(response: Any) -> list[Any]:
    return [orjson.loads(line) for line in response.content.splitlines()]


def test_export_streams_only_the_callers_project(client: TestClient) -> None:
    """Each key exports its own project's items; the file is an attachment of the right type."""
    _rated(client, "a-all", 3, "s1")
    _rated(client, "b-all", 2, "s1")
    response = client.get("/v1/export", params={"kind": "sft"}, headers=key("a-read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="feedback-sft.jsonl"' in response.headers["content-disposition"]
    prompts = sorted(r["messages"][0]["content"] for r in _rows(response))
    assert prompts == [f"a-all question {i}" for i in range(3)]
    raw = client.get("/v1/export", params={"kind": "raw"}, headers=key("b-all"))
    assert {r["context"]["owner_id"] for r in _rows(raw)} == {"proj-b"}
    assert len(_rows(raw)) == 2


def test_export_formats_and_filters(client: TestClient) -> None:
    """format=parquet gives a Parquet file; session_id narrows; TRL columns by flavor."""
    _rated(client, "a-all", 2, "s1")
    _rated(client, "a-all", 1, "s2", score=1)
    params = {"kind": "kto", "format": "parquet", "style": "standard"}
    response = client.get("/v1/export", params=params, headers=key("a-read"))
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names == ["prompt", "completion", "label"]
    assert sorted(table.column("label").to_pylist()) == [False, True, True]
    narrowed = client.get(
        "/v1/export",
        params={"kind": "dpo", "flavor": "trl", "session_id": "s1"},
        headers=key("a-read"),
    )
    assert narrowed.status_code == 200
    assert _rows(narrowed) == []  # two different prompts: nothing to pair


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "sft", "format": "csv"}, "format"),
        ({"kind": "kto", "flavor": "openai"}, "flavor"),
        ({"kind": "chat"}, "kind"),
        ({}, "kind"),
        ({"kind": "kto", "min_rating": "2", "max_rating": "3"}, "max_rating"),
        ({"kind": "raw", "since": "yesterday"}, "since"),
    ],
)
def test_bad_export_options_are_422_before_any_row(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    """A bad option is a 422 naming the field, not a broken stream."""
    response = client.get("/v1/export", params=params, headers=key("a-read"))
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_export_and_delete_are_authorized_first(client: TestClient) -> None:
    """No key is 401 even with bad parameters; the wrong scope is 403."""
    assert client.get("/v1/export", params={"kind": "nope"}).status_code == 401
    assert client.delete("/v1/feedback").status_code == 401
    assert client.get("/v1/export?kind=raw", headers=key("a-ingest")).status_code == 403
    assert client.delete("/v1/feedback?session_id=s", headers=key("a-all")).status_code == 403


def test_delete_by_session_removes_it_from_every_read(client: TestClient) -> None:
    """After DELETE, no get, list, stat or export of the project returns the session."""
    gone = _rated(client, "b-all", 2, "gone")
    kept = _rated(client, "b-all", 1, "kept")
    other = _rated(client, "a-all", 1, "gone")  # same session id, another project
    response = client.delete("/v1/feedback", params={"session_id": "gone"}, headers=key("b-all"))
    assert response.status_code == 200
    receipt = response.json()
    assert receipt["criteria"] == {"session_id": "gone", "owner_id": "proj-b"}
    assert receipt["removed"]["items"] == 2
    assert receipt["removed"]["captures"] == 0
    assert receipt["deleted_at"]
    for item_id in gone:
        assert client.get(f"/v1/feedback/{item_id}", headers=key("b-all")).status_code == 404
    listed = client.get("/v1/feedback", headers=key("b-all")).json()["items"]
    assert [i["id"] for i in listed] == kept
    assert client.get("/v1/stats", headers=key("b-all")).json()["total_count"] == 1
    exported = _rows(client.get("/v1/export?kind=raw", headers=key("b-all")))
    assert [r["id"] for r in exported] == kept
    assert client.get(f"/v1/feedback/{other[0]}", headers=key("a-all")).status_code == 200


def test_delete_by_id_or_trace_and_bad_requests(client: TestClient) -> None:
    """One item by id, a trace by trace_id; no field at all is a 422."""
    first, second = _rated(client, "b-all", 2, "s")
    by_id = client.delete("/v1/feedback", params={"id": first}, headers=key("b-all"))
    assert by_id.json()["removed"]["items"] == 1
    by_trace = client.delete("/v1/feedback", params={"trace_id": "s-t1"}, headers=key("b-all"))
    assert by_trace.json()["removed"]["items"] == 1
    assert client.get(f"/v1/feedback/{second}", headers=key("b-all")).status_code == 404
    nothing = client.delete("/v1/feedback", headers=key("b-all"))
    assert nothing.status_code == 422
    assert nothing.json()["field"] == "id"


def test_delete_by_owner_refuses_unknown_filters_and_names_its_parameters(
    client: TestClient,
) -> None:
    """owner_id deletes the whole project (only its own); a misspelt filter never widens it."""
    _rated(client, "b-all", 2, "s1")
    _rated(client, "b-all", 1, "s2")
    kept = _rated(client, "a-all", 1, "s1")
    misspelt = client.delete(
        "/v1/feedback", params={"trace_id": "s1-t0", "sesion_id": "x"}, headers=key("b-all")
    )
    assert (misspelt.status_code, misspelt.json()["field"]) == (422, "sesion_id")
    blank = client.delete("/v1/feedback", params={"id": " "}, headers=key("b-all"))
    assert (blank.status_code, blank.json()["field"]) == (422, "id")
    other = client.delete("/v1/feedback", params={"owner_id": "proj-a"}, headers=key("b-all"))
    assert other.status_code == 403
    assert client.get("/v1/stats", headers=key("b-all")).json()["total_count"] == 3
    everything = client.delete("/v1/feedback", params={"owner_id": "proj-b"}, headers=key("b-all"))
    assert everything.status_code == 200, everything.text
    assert everything.json()["removed"]["items"] == 3
    assert client.get("/v1/stats", headers=key("b-all")).json()["total_count"] == 0
    assert client.get(f"/v1/feedback/{kept[0]}", headers=key("a-all")).status_code == 200


_UNKNOWN = "known:"
_REPEATED = "must be given once"


@pytest.mark.parametrize(
    ("request_line", "params", "field", "rule"),
    [
        ("GET /v1/export", [("kind", "raw"), ("sesion_id", "s1")], "sesion_id", "option"),
        ("GET /v1/export", [("kind", "raw"), ("model", "a"), ("model", "b")], "model", _REPEATED),
        (
            "DELETE /v1/feedback",
            [("session_id", "s1"), ("session_id", "s2")],
            "session_id",
            _REPEATED,
        ),
        ("GET /v1/feedback", [("modle", "gpt-4o")], "modle", "known: type, model"),
        ("GET /v1/feedback", [("limit", "5"), ("limit", "500")], "limit", _REPEATED),
        ("GET /v1/stats", [("window_hour", "1")], "window_hour", _UNKNOWN),
        ("GET /v1/feedback/some-id", [("pretty", "1")], "pretty", "(it takes none)"),
    ],
)
def test_misspelt_or_repeated_query_parameters_are_refused(
    client: TestClient, request_line: str, params: list[tuple[str, str]], field: str, rule: str
) -> None:
    """An unknown or repeated query parameter is a 422 naming it; keys are checked first.

    It never widens what is read, exported or deleted, nor silently keeps a last value.
    """
    method, path = request_line.split()
    kept = _rated(client, "a-all", 2, "s1") + _rated(client, "a-all", 1, "s2")
    headers = key("b-all") if method == "DELETE" else key("a-all")
    refused = client.request(method, path, params=tuple(params), headers=headers)
    assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text
    assert rule in refused.json()["message"]
    assert client.request(method, path, params=tuple(params)).status_code == 401
    everything = client.get("/v1/feedback", headers=key("a-all")).json()["items"]
    assert {item["id"] for item in everything} == set(kept)
