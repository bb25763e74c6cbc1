"""
Unmodified Langfuse, LangSmith and MLflow SDKs send feedback to a real server; /v1 reads it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import mlflow
import pytest
from langfuse import Langfuse
from langsmith import Client
from mlflow.entities import AssessmentSource, AssessmentSourceType
from mlflow.exceptions import MlflowException

from ai_feedback import FeedbackItem, FeedbackType
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.peers import langfuse_score_payload as score_payload
from ai_feedback.peers import langsmith_feedback_out, mlflow_error
from ai_feedback.peers import langsmith_feedback_payload as feedback_payload
from ai_feedback.peers import mlflow_assessment_payload as assessment_payload
from tests.server.conftest import SECRETS, key


def _items(live: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{live}/v1/feedback", params={"limit": 100, **params}, headers=key("a-read")
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _langfuse(live: str, name: str = "a-ingest") -> Langfuse:
    return Langfuse(
        public_key=name,
        secret_key=SECRETS[name][0],
        host=live,
        flush_interval=0.1,
        tracing_enabled=True,
    )


def test_langfuse_sdk_scores_of_every_type(live: str) -> None:
    """create_score with each data type lands as the matching item, every field kept."""
    client = _langfuse(live)
    assert client.auth_check()
    trace = "a" * 32
    client.create_score(
        name="quality",
        value=0.9,
        trace_id=trace,
        data_type="NUMERIC",
        comment="fine",
        score_id="lf-num",
        session_id="sess-1",
        metadata={"k": "v"},
    )
    client.create_score(
        name="thumbs", value=1, trace_id=trace, data_type="BOOLEAN", score_id="lf-bool"
    )
    client.create_score(
        name="tone",
        value="polite",
        trace_id=trace,
        data_type="CATEGORICAL",
        score_id="lf-cat",
        observation_id="obs-1",
    )
    client.create_score(
        name="note", value="shorter please", trace_id=trace, data_type="TEXT", score_id="lf-text"
    )
    client.create_score(
        name="fix", value="Canberra", trace_id=trace, data_type="CORRECTION", score_id="lf-fix"
    )
    client.create_score(
        name="quality",
        value=0.9,
        trace_id=trace,
        data_type="NUMERIC",
        comment="fine",
        score_id="lf-num",
        session_id="sess-1",
        metadata={"k": "v"},
    )  # resent
    client.flush()
    client.shutdown()
    items = {i["id"]: i for i in _items(live, trace_id=trace)}
    assert set(items) == {"lf-num", "lf-bool", "lf-cat", "lf-text", "lf-fix"}
    num = items["lf-num"]
    assert (num["type"], num["value"]) == ("rating", 0.9)
    assert num["context"] == {
        "trace_id": trace,
        "session_id": "sess-1",
        "comment": "fine",
        "owner_id": "proj-a",
    }
    assert num["metadata"]["name"] == "quality"
    assert num["metadata"]["langfuse_metadata"] == {"k": "v"}
    assert num["metadata"]["source"] == "langfuse"
    assert (items["lf-bool"]["type"], items["lf-bool"]["value"]) == ("rating", 1)
    assert items["lf-cat"]["type"] == "label"
    assert items["lf-cat"]["value"]["label"] == "polite"
    assert items["lf-cat"]["context"]["observation_id"] == "obs-1"
    assert (items["lf-text"]["type"], items["lf-text"]["value"]) == ("text", "shorter please")
    assert items["lf-fix"]["value"] == {"original": "", "corrected": "Canberra"}


def test_langfuse_auth_check_with_a_wrong_secret_fails(live: str) -> None:
    """The SDK's auth_check fails with a wrong secret key."""
    client = Langfuse(
        public_key="a-ingest",
        secret_key="wrong",  # noqa: S106 - a wrong secret on purpose
        host=live,
        tracing_enabled=False,
    )
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own error type
        client.auth_check()
    client.shutdown()


def test_langfuse_ingestion_endpoint(live: str) -> None:
    """POST /api/public/ingestion (SDK v2/v3 wire format): 207, scores kept, others reported."""
    auth = ("a-ingest", SECRETS["a-ingest"][0])
    now = datetime.now(UTC).isoformat()
    batch = {
        "batch": [
            {
                "id": "ev-1",
                "type": "score-create",
                "timestamp": now,
                "body": {
                    "id": "lf-ing-1",
                    "traceId": "tr-ing",
                    "name": "accuracy",
                    "value": 0.5,
                    "dataType": "NUMERIC",
                },
            },
            {"id": "ev-2", "type": "trace-create", "timestamp": now, "body": {"id": "tr-ing"}},
            {
                "id": "ev-3",
                "type": "score-create",
                "timestamp": now,
                "body": {
                    "id": "lf-ing-3",
                    "traceId": "tr-ing",
                    "name": "x",
                    "value": 1,
                    "dataType": "WEIRD",
                },
            },
        ],
        "metadata": {"sdk_name": "python"},
    }
    response = httpx.post(f"{live}/api/public/ingestion", json=batch, auth=auth)
    assert response.status_code == 207
    body = response.json()
    assert body["successes"] == [{"id": "ev-1", "status": 201}]
    assert [e["id"] for e in body["errors"]] == ["ev-2", "ev-3"]
    assert "dataType" in body["errors"][1]["message"]
    [item] = _items(live, trace_id="tr-ing")
    assert (item["id"], item["value"], item["metadata"]["name"]) == ("lf-ing-1", 0.5, "accuracy")
    assert httpx.post(f"{live}/api/public/ingestion", json=batch).status_code == 401


def test_langfuse_scores_endpoint_reports_rejections(live: str) -> None:
    """POST /api/public/scores: 202 when all pass, 207 with counts and messages otherwise."""
    auth = ("a-ingest", SECRETS["a-ingest"][0])
    good = {"id": "lf-s-1", "traceId": "tr-s", "name": "q", "value": 3}
    ok = httpx.post(f"{live}/api/public/scores", json=[good], auth=auth)
    assert (ok.status_code, ok.json()) == (202, {"message": "Accepted"})
    mixed = httpx.post(
        f"{live}/api/public/scores",
        json=[
            good,
            {"value": "high", "dataType": "NUMERIC", "name": "x", "traceId": "t"},
        ],
        auth=auth,
    )
    assert mixed.status_code == 207
    assert (mixed.json()["accepted"], mixed.json()["rejected"]) == (1, 1)
    projects = httpx.get(f"{live}/api/public/projects", auth=auth).json()
    assert projects["data"][0]["id"] == "proj-a"
    assert projects["data"][0]["metadata"] == {}


def _langsmith(live: str, name: str = "a-ingest") -> Client:
    return Client(api_url=live, api_key=SECRETS[name][0], auto_batch_tracing=False)


def test_langsmith_sdk_feedback(live: str) -> None:
    """create_feedback with a score, a value, a correction and a comment; read back through /v1."""
    client = _langsmith(live)
    run_id = uuid.uuid4()
    session = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(4)]
    client.create_feedback(
        run_id, key="correctness", score=1, comment="right", feedback_id=ids[0], session_id=session
    )
    client.create_feedback(
        run_id, key="tone", value="friendly", feedback_id=ids[1], session_id=session
    )
    client.create_feedback(
        run_id, key="fix", correction={"output": "Canberra"}, feedback_id=ids[2], session_id=session
    )
    client.create_feedback(
        run_id, key="note", comment="too long", feedback_id=ids[3], session_id=session
    )
    items = {i["id"]: i for i in _items(live, trace_id=str(run_id))}
    assert set(items) == {str(i) for i in ids}
    first = items[str(ids[0])]
    assert (first["type"], first["value"]) == ("rating", 1)
    assert first["context"] == {
        "trace_id": str(run_id),
        "session_id": str(session),
        "comment": "right",
        "owner_id": "proj-a",
    }
    assert first["metadata"]["key"] == "correctness"
    assert first["metadata"]["source"] == "langsmith"
    assert items[str(ids[1])]["value"] == {"label": "friendly", "input": None}
    assert items[str(ids[2])]["value"] == {"original": "", "corrected": "Canberra"}
    assert (items[str(ids[3])]["type"], items[str(ids[3])]["value"]) == ("text", "too long")


def test_langsmith_presigned_feedback(live: str) -> None:
    """A presigned token lets a caller without a key send feedback for that run only."""
    client = _langsmith(live)
    run_id = uuid.uuid4()
    token = client.create_presigned_feedback_token(
        run_id, "thumbs", expiration=timedelta(minutes=5)
    )
    assert token.url.endswith(f"/feedback/tokens/{token.id}")
    keyless = Client(api_url=live, api_key="not-a-key", auto_batch_tracing=False)
    keyless.create_feedback_from_token(token.url, score=0, comment="wrong answer")
    response = httpx.get(token.url, params={"score": 1})
    assert response.status_code == 200
    items = _items(live, trace_id=str(run_id))
    assert sorted(i["value"] for i in items) == [0, 1]
    assert {i["metadata"]["key"] for i in items} == {"thumbs"}
    assert {i["context"]["owner_id"] for i in items} == {"proj-a"}
    unknown = httpx.post(f"{live}/feedback/tokens/{uuid.uuid4()}", json={"score": 1})
    assert unknown.status_code == 401
    no_key = httpx.post(
        f"{live}/feedback/tokens", json={"run_id": str(run_id), "feedback_key": "x"}
    )
    assert no_key.status_code == 401


def test_langsmith_info_and_auth(live: str) -> None:
    """GET /info answers without a key; POST /feedback needs one with the ingest scope."""
    assert httpx.get(f"{live}/info").json()["version"] == ""
    body = {"run_id": str(uuid.uuid4()), "key": "k", "score": 1}
    assert httpx.post(f"{live}/feedback", json=body).status_code == 401
    assert httpx.post(f"{live}/feedback", json=body, headers=key("a-read")).status_code == 403
    assert httpx.post(f"{live}/feedback", json=body, headers=key("a-ingest")).status_code == 200


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ({"value": 2.5, "name": "q"}, {"type": "rating", "score": 2.5}),
        ({"value": True, "dataType": "BOOLEAN"}, {"type": "rating", "score": 1}),
        ({"value": 3, "dataType": "CATEGORICAL"}, {"type": "label", "label": "3", "input": None}),
        ({"value": "yes"}, {"type": "label", "label": "yes", "input": None}),
    ],
)
def test_langfuse_mapping(score: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each Langfuse data type maps to the documented item type and value."""
    payload = score_payload(score)
    assert {k: payload[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ({"score": True}, {"type": "rating", "score": 1}),
        ({"value": 0.5}, {"type": "rating", "score": 0.5}),
        ({"value": {"a": 1}, "key": "k"}, {"type": "label", "label": "k", "input": {"a": 1}}),
        ({"correction": "x"}, {"type": "correction", "original": "", "corrected": "x"}),
        ({"correction": {"a": 1}}, {"type": "correction", "original": "", "corrected": '{"a":1}'}),
    ],
)
def test_langsmith_mapping(feedback: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each LangSmith feedback shape maps to the documented item type and value."""
    payload = feedback_payload({"run_id": "r", **feedback})
    assert {k: payload[k] for k in expected} == expected


def test_unmappable_peer_payloads_are_validation_errors() -> None:
    """A score or feedback that carries nothing usable names the field."""
    with pytest.raises(FeedbackValidationError, match="dataType"):
        score_payload({"value": 1, "dataType": "NOPE"})
    with pytest.raises(FeedbackValidationError, match="'value'"):
        score_payload({"value": [1], "dataType": "CATEGORICAL"})
    with pytest.raises(FeedbackValidationError, match="one of score"):
        feedback_payload({"run_id": "r"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FeedbackValidationError, match="'feedback'"):
            feedback_payload(["x"])


@pytest.fixture
def mlflow_at(live: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MLflow's client pointed at the live service with the ingest key, without retries."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRETS["a-ingest"][0])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(live)
    return live


def test_mlflow_sdk_feedback_and_expectations(mlflow_at: str) -> None:
    """log_feedback of each value type and log_expectation land as the matching items."""
    trace = f"tr-{uuid.uuid4().hex}"
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="reviewer-1")
    rated = mlflow.log_feedback(
        trace_id=trace,
        name="relevance",
        value=0.9,
        source=human,
        rationale="answers the question",
        metadata={"model": "gpt-4o"},
        span_id="span-1",
    )
    mlflow.log_feedback(trace_id=trace, name="thumbs", value=True)
    mlflow.log_feedback(trace_id=trace, name="tone", value="polite")
    mlflow.log_feedback(trace_id=trace, name="scores", value={"a": 0.5, "b": "x"})
    mlflow.log_expectation(trace_id=trace, name="expected", value="Canberra")
    mlflow.log_expectation(trace_id=trace, name="facts", value={"expected_facts": ["a"]})
    items = {i["metadata"]["name"]: i for i in _items(mlflow_at, trace_id=trace)}
    assert set(items) == {"relevance", "thumbs", "tone", "scores", "expected", "facts"}
    first = items["relevance"]
    assert rated.assessment_id == first["id"]
    assert (first["type"], first["value"]) == ("rating", 0.9)
    assert first["context"] == {
        "trace_id": trace,
        "span_id": "span-1",
        "comment": "answers the question",
        "owner_id": "proj-a",
    }
    assert first["metadata"] == {
        "source": "mlflow",
        "name": "relevance",
        "mlflow_source": {"source_type": "HUMAN", "source_id": "reviewer-1"},
        "mlflow_metadata": {"model": "gpt-4o"},
    }
    assert rated.create_time_ms is not None
    sent = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rated.create_time_ms)
    assert datetime.fromisoformat(first["created_at"]) == sent
    assert (items["thumbs"]["value"], items["thumbs"]["metadata"]["scale"]) == (1, "thumbs")
    assert items["tone"]["value"] == {"label": "polite", "input": None}
    assert items["scores"]["value"] == {"label": "scores", "input": {"a": 0.5, "b": "x"}}
    assert items["expected"]["value"] == {"original": "", "corrected": "Canberra"}
    assert items["expected"]["context"] == {"trace_id": trace, "owner_id": "proj-a"}
    assert items["expected"]["metadata"] == {
        "source": "mlflow",
        "name": "expected",
        "mlflow_source": {"source_type": "HUMAN", "source_id": "default"},
    }
    facts = items["facts"]["value"]["corrected"]
    assert (items["facts"]["type"], json.loads(facts)) == ("correction", {"expected_facts": ["a"]})


def test_mlflow_errors_reach_the_sdk_with_their_code(
    mlflow_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusals raise MlflowException with MLflow's error code and our message; none stored."""
    trace = f"tr-{uuid.uuid4().hex}"
    with pytest.raises(MlflowException, match=r"INVALID_PARAMETER_VALUE.*feedback\.value"):
        mlflow.log_feedback(trace_id=trace, name="judge", error=TimeoutError("slow"))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRETS["a-read"][0])
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED.*ingest") as denied:
        mlflow.log_feedback(trace_id=trace, name="q", value=1.0)
    assert denied.value.error_code == "PERMISSION_DENIED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-key")
    with pytest.raises(MlflowException, match="UNAUTHENTICATED") as refused:
        mlflow.log_feedback(trace_id=trace, name="q", value=1.0)
    assert refused.value.error_code == "UNAUTHENTICATED"
    assert _items(mlflow_at, trace_id=trace) == []


def _assessments(live: str, trace: str) -> str:
    return f"{live}/api/3.0/mlflow/traces/{trace}/assessments"


def test_mlflow_route_authorizes_before_the_body_and_stores_a_resend_once(live: str) -> None:
    """401 without a key and 403 without the scope, bad body or not; a resend is one item."""
    url = _assessments(live, "tr-1")
    for body in ({"assessment": {"feedback": {"value": 1.0}}}, "not json"):
        answer = httpx.post(url, json=body)
        assert (answer.status_code, answer.json()["error_code"]) == (401, "UNAUTHENTICATED")
        answer = httpx.post(url, json=body, headers=key("a-read"))
        assert (answer.status_code, answer.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assessment = {
        "assessment_name": "q",
        "trace_id": "tr-1",
        "create_time": "2026-11-30T21:31:23.644Z",
        "feedback": {"value": 4.0},
    }
    first = httpx.post(url, json={"assessment": assessment}, headers=key("a-ingest"))
    again = httpx.post(url, json={"assessment": assessment}, headers=key("a-ingest"))
    other = httpx.post(url, json={"assessment": assessment}, headers=key("b-all"))
    assert (first.status_code, again.status_code, other.status_code) == (200, 200, 200)
    recorded = first.json()["assessment"]
    assert recorded == {**assessment, "assessment_id": recorded["assessment_id"]}
    assert again.json() == first.json()  # the same content, the same id
    assert other.json()["assessment"]["assessment_id"] != recorded["assessment_id"]
    assert [i["id"] for i in _items(live, trace_id="tr-1")] == [recorded["assessment_id"]]


def test_mlflow_route_without_a_time_stores_each_post(live: str) -> None:
    """A caller that sends no create_time gets no content-derived id: repeats are kept."""
    url = _assessments(live, "tr-3")
    body = {"assessment": {"assessment_name": "q", "feedback": {"value": 1.0}}}
    answers = [httpx.post(url, json=body, headers=key("a-ingest")) for _ in range(2)]
    ids = {answer.json()["assessment"]["assessment_id"] for answer in answers}
    assert len(ids) == 2
    assert {i["id"] for i in _items(live, trace_id="tr-3")} == ids


def test_other_mlflow_endpoints_answer_endpoint_not_found(mlflow_at: str) -> None:
    """Only creating assessments is served: the client raises (or reads None) with our reason."""
    trace = f"tr-{uuid.uuid4().hex}"
    logged = mlflow.log_feedback(trace_id=trace, name="q", value=1.0)
    assert logged.assessment_id is not None
    with pytest.raises(MlflowException, match=r"ENDPOINT_NOT_FOUND.*not served") as missing:
        mlflow.delete_assessment(trace_id=trace, assessment_id=logged.assessment_id)
    assert missing.value.error_code == "ENDPOINT_NOT_FOUND"
    with pytest.raises(MlflowException, match="ENDPOINT_NOT_FOUND"):
        mlflow.override_feedback(
            trace_id=trace, assessment_id=logged.assessment_id, value=0.0, rationale="no"
        )
    assert mlflow.get_trace(trace) is None  # the client warns and returns None
    answer = httpx.get(_assessments(mlflow_at, trace), headers=key("a-read"))
    assert (answer.status_code, answer.json()["error_code"]) == (405, "ENDPOINT_NOT_FOUND")
    assert len(_items(mlflow_at, trace_id=trace)) == 1  # nothing changed or removed


DEEP = {"a": json.loads("[" * 300 + "]" * 300)}  # deeper than JSON encoders go


@pytest.mark.parametrize(
    ("assessment", "status", "field"),
    [
        ("x", 422, "assessment"),
        (None, 422, "assessment"),
        ({"assessment_name": "q"}, 422, "assessment"),
        ({"feedback": {"value": 1}, "expectation": {"value": "x"}}, 422, "assessment"),
        ({"trace_id": "tr-2", "feedback": {"value": 1}}, 422, "assessment.trace_id"),
        ({"feedback": 3}, 422, "assessment.feedback"),
        ({"feedback": {"error": {"error_code": "X"}}}, 422, "assessment.feedback.value"),
        ({"feedback": {"value": ""}}, 422, "assessment.feedback.value"),
        ({"feedback": {"value": 2.0**60}}, 422, "assessment.feedback.value"),
        ({"feedback": {"value": "x" * 10_001}}, 413, "assessment.feedback.value"),
        ({"expectation": {"value": "x" * 10_001}}, 413, "assessment.expectation.value"),
        ({"expectation": {}}, 422, "assessment.expectation"),
        (
            {"expectation": {"serialized_value": {"serialization_format": "XML", "value": "<a/>"}}},
            422,
            "assessment.expectation.serialized_value",
        ),
        ({"feedback": {"value": 1}, "create_time": "yesterday"}, 422, "assessment.create_time"),
        ({"feedback": {"value": 1}, "span_id": 7}, 422, "assessment.span_id"),
        ({"feedback": {"value": 1}, "rationale": ["no"]}, 422, "assessment.rationale"),
        ({"feedback": {"value": 1}, "metadata": "m"}, 422, "assessment.metadata"),
        ({"feedback": {"value": 1}, "assessment_id": " "}, 422, "assessment.assessment_id"),
        ({"feedback": {"value": 1}, "assessment_name": "n" * 60_000}, 413, "assessment"),
        ({"feedback": {"value": 1}, "span_id": "a\u0000b"}, 422, "assessment.span_id"),
        ({"feedback": {"value": 1}, "rationale": "r" * 10_001}, 413, "assessment.rationale"),
        (  # with a time, its id derives from the content, which cannot be encoded
            {"feedback": {"value": 1}, "create_time": "2025-01-01T00:00:00Z", "metadata": DEEP},
            422,
            "assessment.metadata.a[0]",
        ),
    ],
)
def test_mlflow_route_refuses_bad_assessments_naming_the_field(
    live: str, assessment: Any, status: int, field: str
) -> None:
    """Each malformed assessment is refused naming MLflow's field, with its error code."""
    body = {"assessment": assessment} if assessment is not None else {"feedback": {"value": 1}}
    answer = httpx.post(_assessments(live, "tr-1"), json=body, headers=key("a-ingest"))
    assert answer.status_code == status, answer.text
    assert answer.json()["field"].startswith(field), answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert _items(live, trace_id="tr-1") == []


def test_mlflow_route_names_an_overlong_trace_id(live: str) -> None:
    """The trace id of the path is checked like every trace id, and named as MLflow's."""
    answer = httpx.post(
        _assessments(live, "t" * 300),
        json={"assessment": {"feedback": {"value": 1}}},
        headers=key("a-ingest"),
    )
    assert answer.status_code == 413, answer.text
    assert (answer.json()["field"], answer.json()["error_code"]) == (
        "trace_id",
        "INVALID_PARAMETER_VALUE",
    )


@pytest.mark.parametrize(
    ("assessment", "expected"),
    [
        ({"feedback": {"value": 2.0}}, {"type": "rating", "score": 2.0}),
        ({"feedback": {"value": False}}, {"type": "rating", "score": 0}),
        ({"feedback": {"value": "yes"}}, {"type": "label", "label": "yes", "input": None}),
        ({"feedback": {"value": [1.0]}}, {"type": "label", "label": "feedback", "input": [1.0]}),
        (
            {"expectation": {"value": 3.0}},
            {"type": "correction", "original": "", "corrected": "3.0"},
        ),
        (
            {"expectation": {"serialized_value": {"value": '{"a": 1}'}}},
            {"type": "correction", "original": "", "corrected": '{"a": 1}'},
        ),
        ({"feedback": {"value": 1.0}, "assessment_id": "a-9"}, {"id": "a-9"}),
        (
            {"feedback": {"value": 0.0, "error": {"error_code": "X"}}, "assessment_name": "j"},
            {"metadata": {"source": "mlflow", "name": "j", "mlflow_error": {"error_code": "X"}}},
        ),
        (
            {"feedback": {"value": True}},
            {"metadata": {"source": "mlflow", "scale": "thumbs"}},
        ),
    ],
)
def test_mlflow_mapping(assessment: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each MLflow assessment shape maps to the documented item type and value."""
    payload = assessment_payload(assessment, trace_id="tr")
    assert {k: payload[k] for k in expected} == expected


def _mint(live: str, name: str = "a-ingest", **body: Any) -> httpx.Response:
    return httpx.post(f"{live}/feedback/tokens", json=body, headers=key(name))


def test_langsmith_presigned_token_id_is_not_taken_over(live: str) -> None:
    """Minting under a live token's id answers it when it is the same token, else 409 'id'."""
    token_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = _mint(live, id=token_id, run_id=run_id, feedback_key="thumbs")
    assert first.status_code == 200, first.text
    for name, run, feedback_key in (
        ("b-all", run_id, "thumbs"),
        ("b-all", "run-b", "thumbs"),
        ("a-ingest", "run-other", "thumbs"),
        ("a-ingest", run_id, "other"),
    ):
        taken = _mint(live, name, id=token_id, run_id=run, feedback_key=feedback_key)
        assert taken.status_code == 409, taken.text
        assert (taken.json()["error"], taken.json()["field"]) == ("conflict", "id")
        assert taken.json()["ids"] == [token_id]
    again = _mint(live, "a-all", id=token_id, run_id=run_id, feedback_key="thumbs", expires_in={})
    assert (again.status_code, again.json()) == (200, first.json())
    used = httpx.post(first.json()["url"], json={"score": 1})
    assert used.status_code == 200, used.text
    [item] = _items(live, trace_id=run_id)
    assert (item["context"]["owner_id"], item["metadata"]["key"]) == ("proj-a", "thumbs")
    seen_by_b = httpx.get(f"{live}/v1/feedback", headers=key("b-all")).json()["items"]
    assert seen_by_b == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"score": 1}', "text/plain"),
        (b"[1]", "application/json"),
        (b'{"score": "x"}', "application/json"),
    ],
)
def test_langsmith_unknown_presigned_token_is_401_before_the_body(
    live: str, content: bytes, content_type: str
) -> None:
    """An unknown token answers 401 with a challenge, whatever the body or the query holds."""
    url = f"{live}/feedback/tokens/{uuid.uuid4()}"
    posted = httpx.post(url, content=content, headers={"content-type": content_type})
    got = httpx.get(url, params={"score": "not a number"})
    for answer in (posted, got):
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "unauthorized"
        assert "WWW-Authenticate" in answer.headers


def test_langsmith_expired_presigned_token_is_401_before_the_body(live: str) -> None:
    """An expired token answers 401 before its body is read."""
    minted = _mint(live, run_id="r", feedback_key="k", expires_in={"seconds": 0.2})
    assert minted.status_code == 200, minted.text
    time.sleep(0.3)
    answer = httpx.post(minted.json()["url"], content=b"not json")
    assert (answer.status_code, answer.json()["message"]) == (
        401,
        "Not authorized: the presigned token has expired.",
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"id": "nope"}, 422, "id"),
        ({"run_id": None}, 422, "run_id"),
        ({"run_id": "r" * 300}, 413, "run_id"),
        ({"run_id": 5}, 422, "run_id"),
        ({"feedback_key": "a\u0000b"}, 422, "feedback_key"),
        ({"feedback_key": " "}, 422, "feedback_key"),
        ({"expires_at": "2099-01-01T00:00:00Z"}, 422, "expires_at"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, 422, "expires_at"),
        ({"expires_at": "soon"}, 422, "expires_at"),
        ({"expires_at": 5}, 422, "expires_at"),
        ({"expires_in": {"hours": True}}, 422, "expires_in"),
        ({"expires_in": {"hours": "1"}}, 422, "expires_in"),
        ({"expires_in": {"days": 10**12}}, 422, "expires_in"),
        ({"expires_in": {"days": 100}}, 422, "expires_in"),
        ({"expires_in": 3600}, 422, "expires_in"),
    ],
)
def test_langsmith_presigned_mint_names_the_field(
    live: str, body: dict[str, Any], status: int, field: str
) -> None:
    """A mint with a bad id, run, feedback key or expiry is refused naming that field."""
    answer = _mint(live, **{"run_id": "r", "feedback_key": "k", **body})
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field, answer.text


@pytest.mark.parametrize(
    ("feedback", "status", "field"),
    [
        ({"run_id": {"a": 1}, "score": 1}, 422, "run_id"),
        ({"run_id": 12345, "score": 1}, 422, "run_id"),
        ({"run_id": "", "score": 1}, 422, "run_id"),
        ({"run_id": "r" * 300, "score": 1}, 413, "run_id"),
        ({"session_id": True, "score": 1}, 422, "session_id"),
        ({"session_id": "s\u0000", "score": 1}, 422, "session_id"),
        ({"id": 7, "score": 1}, 422, "id"),
        ({"key": 5, "score": 1}, 422, "key"),
        ({"key": "k\u0000", "score": 1}, 422, "key"),
        ({"comment": 5}, 422, "comment"),
        ({"comment": "a\u0000"}, 422, "comment"),
        ({"comment": "a\u0000", "score": 1}, 422, "comment"),
        ({"score": "x"}, 422, "score"),
        ({"value": 2.0**60}, 422, "value"),
        ({"value": "a\u0000"}, 422, "value"),
        ({"value": [1, {"a": "\u0000"}]}, 422, "value[1].a"),
        ({"correction": "a\u0000"}, 422, "correction"),
        ({"correction": {"output": "x" * 10_001}}, 413, "correction.output"),
        ({"score": 1, "metadata": {"m": "\u0000"}}, 422, "metadata.m"),
        ({"score": 1, "feedback_source": {"s": "\u0000"}}, 422, "feedback_source.s"),
        ({"score": 1, "trace_id": "\u0000"}, 422, "trace_id"),
        ({"score": 1, "metadata": {"m": "x" * 60_000}}, 413, "feedback"),
    ],
)
def test_langsmith_feedback_errors_name_langsmith_fields(
    live: str, feedback: dict[str, Any], status: int, field: str
) -> None:
    """A bad LangSmith feedback is refused naming LangSmith's field, never the item's."""
    answer = httpx.post(
        f"{live}/feedback", json={"run_id": "run-1", **feedback}, headers=key("a-ingest")
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field, answer.text
    assert _items(live) == []


def test_langsmith_presigned_feedback_errors_name_langsmith_fields(live: str) -> None:
    """Feedback sent with a presigned token names LangSmith's fields too."""
    url = _mint(live, run_id="r", feedback_key="k").json()["url"]
    for body, field in (
        ({"value": "a\u0000"}, "value"),
        ({"score": 1, "comment": "a\u0000"}, "comment"),
        ({"correction": "a\u0000"}, "correction"),
    ):
        answer = httpx.post(url, json=body)
        assert (answer.status_code, answer.json()["field"]) == (422, field), answer.text
    answer = httpx.get(url, params={"value": "a\u0000"})
    assert (answer.status_code, answer.json()["field"]) == (422, "value"), answer.text


@pytest.mark.parametrize(
    ("score", "field"),
    [
        ({"value": "abc", "dataType": "NUMERIC"}, "value"),
        ({"value": 7, "dataType": "BOOLEAN"}, "value"),
        ({"value": 0.5, "dataType": "BOOLEAN"}, "value"),
        ({"value": "1", "dataType": "BOOLEAN"}, "value"),
        ({"value": "a\u0000", "dataType": "TEXT"}, "value"),
        ({"value": "x" * 10_001, "dataType": "CORRECTION"}, "value"),
        ({"value": "a\u0000", "dataType": "CATEGORICAL"}, "value"),
        ({"value": 1, "traceId": "t\u0000"}, "traceId"),
        ({"value": 1, "sessionId": "s" * 300}, "sessionId"),
        ({"value": 1, "name": "n\u0000"}, "name"),
        ({"value": 1, "comment": "c\u0000"}, "comment"),
        ({"value": 1, "metadata": {"m": "\u0000"}}, "metadata.m"),
        ({"value": 1, "timestamp": "yesterday"}, "timestamp"),
        ({"value": 1, "id": " "}, "id"),
    ],
)
def test_langfuse_errors_name_langfuse_fields(live: str, score: dict[str, Any], field: str) -> None:
    """A bad Langfuse score is refused naming Langfuse's field, on both routes."""
    auth = ("a-ingest", SECRETS["a-ingest"][0])
    score = {"traceId": "tr-lf", "name": "q", **score}
    scores = httpx.post(f"{live}/api/public/scores", json=[score], auth=auth)
    assert scores.status_code == 207, scores.text
    [error] = scores.json()["errors"]
    assert error["message"].startswith(f"Invalid {field!r}"), error
    event = {"id": "ev", "type": "score-create", "timestamp": "2026-01-01T00:00:00Z"}
    batch = {"batch": [{**event, "body": score}]}
    ingested = httpx.post(f"{live}/api/public/ingestion", json=batch, auth=auth)
    [error] = ingested.json()["errors"]
    assert error["message"].startswith(f"Invalid {field!r}"), error
    assert _items(live) == []


@pytest.mark.parametrize(("value", "expected"), [(True, 1), (False, 0), (1, 1), (0.0, 0)])
def test_langfuse_boolean_scores_are_zero_or_one(value: object, expected: int) -> None:
    """A BOOLEAN score of true, false, 0 or 1 is a thumbs rating of 0 or 1."""
    payload = score_payload({"value": value, "dataType": "BOOLEAN"})
    assert (payload["score"], payload["metadata"]["scale"]) == (expected, "thumbs")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([1, {"a": "\u0000"}], "assessment.feedback.value[1].a"),
        ({"a": ["\u0000"]}, "assessment.feedback.value.a[0]"),
        ([1, "x" * 60_000], "assessment.feedback.value"),
    ],
)
def test_mlflow_errors_name_list_elements_of_the_value(live: str, value: Any, field: str) -> None:
    """An element of a list or object feedback value is named inside MLflow's value field."""
    body = {"assessment": {"assessment_name": "n", "feedback": {"value": value}}}
    answer = httpx.post(_assessments(live, "tr"), json=body, headers=key("a-ingest"))
    assert answer.status_code in (413, 422), answer.text
    assert answer.json()["field"] == field, answer.text


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("input[1].a", "info.assessments[0].feedback.value[1].a"),
        ("label", "info.assessments[0].feedback.value"),
        ("metadata.mlflow_metadata.k", "info.assessments[0].metadata.k"),
        ("context.trace_id", "info.trace_id"),
    ],
)
def test_mlflow_error_renames_nested_fields(ours: str, theirs: str) -> None:
    """mlflow_error names a nested item field (dotted or indexed) by MLflow's field."""
    exc = FeedbackValidationError(ours, "must not contain NUL characters")
    named = mlflow_error(
        exc, {"feedback": {}}, prefix="info.assessments[0]", trace_field="info.trace_id"
    )
    assert (named.field, named.rule) == (theirs, exc.rule)


def test_langsmith_feedback_keeps_what_its_type_did_not_take(live: str) -> None:
    """A score with a correction, a value and extra metadata: one rating, nothing dropped."""
    client = _langsmith(live)
    run_id, feedback_id, group = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    client.create_feedback(
        run_id,
        key="correctness",
        score=0,
        value="wrong city",
        correction={"output": "Canberra"},
        comment="wrong",
        extra={"reviewer": "alice"},
        error=True,
        feedback_group_id=group,
        feedback_id=feedback_id,
        session_id=uuid.uuid4(),
    )
    [item] = _items(live, trace_id=str(run_id))
    assert (item["type"], item["value"]) == ("rating", 0)
    metadata = item["metadata"]
    assert metadata["langsmith_correction"] == {"output": "Canberra"}
    assert metadata["langsmith_value"] == "wrong city"
    assert metadata["langsmith_extra"] == {"reviewer": "alice"}
    assert metadata["langsmith_error"] is True
    assert metadata["langsmith_feedback_group_id"] == str(group)
    assert "langsmith_score" not in metadata


@pytest.mark.parametrize(
    ("feedback", "kept"),
    [
        ({"score": 1, "correction": "x"}, {"langsmith_correction": "x"}),
        ({"correction": "x", "value": 3}, {"langsmith_value": 3}),
        ({"value": 2, "correction": None}, {}),
        ({"comment": "only a comment"}, {}),
    ],
)
def test_langsmith_mapping_keeps_the_other_fields(
    feedback: dict[str, Any], kept: dict[str, Any]
) -> None:
    """Score, value or correction the type was not made from go to the metadata, named."""
    metadata = feedback_payload({"run_id": "r", **feedback})["metadata"]
    assert {k: v for k, v in metadata.items() if k.startswith("langsmith_")} == kept


def test_langfuse_dataset_run_queue_and_source_are_kept(live: str) -> None:
    """A dataset-run score keeps its run id (the only link it has), its queue and source."""
    client = _langfuse(live, "b-all")  # one SDK client per key: a-ingest's was shut down
    run = f"dsrun-{uuid.uuid4().hex[:8]}"
    client.create_score(
        name="run_accuracy", value=0.8, dataset_run_id=run, score_id=f"lf-{run}", comment="c"
    )
    client.flush()
    client.shutdown()
    item = httpx.get(f"{live}/v1/feedback/lf-{run}", headers=key("b-all")).json()
    assert item["metadata"]["dataset_run_id"] == run
    payload = score_payload({"value": 1, "queueId": "q-1", "source": "ANNOTATION"})
    assert (payload["metadata"]["queue_id"], payload["metadata"]["langfuse_source"]) == (
        "q-1",
        "ANNOTATION",
    )


def test_langfuse_span_export_is_accepted_and_discarded(live: str) -> None:
    """Scores on spans are kept, and the SDK's span export gets 200 (after a key check)."""
    client = _langfuse(live, "a-all")
    with client.start_as_current_observation(name="answer", as_type="span") as span:
        span.score(name="span_score", value=0.5)
        trace = span.trace_id
    client.flush()
    client.shutdown()
    [item] = _items(live, trace_id=trace)
    assert item["metadata"]["name"] == "span_score"
    otel = f"{live}/api/public/otel/v1/traces"
    auth = ("a-ingest", SECRETS["a-ingest"][0])
    proto = httpx.post(otel, content=b"\x0a\x00", auth=auth)
    assert (proto.status_code, proto.content) == (200, b"")
    assert proto.headers["content-type"] == "application/x-protobuf"
    as_json = httpx.post(otel, json={"resourceSpans": []}, auth=auth)
    assert (as_json.status_code, as_json.json()) == (200, {})
    assert httpx.post(otel, content=b"\x0a\x00").status_code == 401
    assert httpx.post(otel, json={}, headers=key("a-read")).status_code == 403


def test_langsmith_client_reads_a_full_batch_config_and_does_not_warn(
    live: str, caplog: pytest.LogCaptureFixture
) -> None:
    """GET /info has every batch_ingest_config key the client reads: no warning at start."""
    info = httpx.get(f"{live}/info").json()
    assert info["version"] == ""
    assert info["batch_ingest_config"]["use_multipart_endpoint"] is False
    with caplog.at_level(logging.WARNING, logger="langsmith"):
        client = Client(api_url=live, api_key=SECRETS["a-ingest"][0])
        client.create_feedback(uuid.uuid4(), key="k", score=1, session_id=uuid.uuid4())
        client.flush()
        client.cleanup()
    assert "compression" not in caplog.text


def test_langsmith_presigned_tokens_for_several_keys(live: str) -> None:
    """create_presigned_feedback_tokens posts a list and gets one usable token per key."""
    client = _langsmith(live)
    run_id = uuid.uuid4()
    tokens = client.create_presigned_feedback_tokens(run_id, ["thumbs", "stars"])
    assert len(tokens) == 2
    for token, score in zip(tokens, (1, 4), strict=True):
        assert httpx.post(token.url, json={"score": score}).status_code == 200
    items = _items(live, trace_id=str(run_id))
    assert sorted((i["metadata"]["key"], i["value"]) for i in items) == [
        ("stars", 4),
        ("thumbs", 1),
    ]


def test_langsmith_token_lists_are_checked_whole(live: str) -> None:
    """A list naming a bad entry, a taken id or nothing mints no token at all."""
    run = str(uuid.uuid4())
    taken = str(uuid.uuid4())
    assert _mint(live, id=taken, run_id=run, feedback_key="a").status_code == 200

    def mint_list(body: Any) -> httpx.Response:
        return httpx.post(f"{live}/feedback/tokens", json=body, headers=key("a-ingest"))

    fresh = str(uuid.uuid4())
    bad = mint_list([{"id": fresh, "run_id": run, "feedback_key": "b"}, {"run_id": run}])
    assert (bad.status_code, bad.json()["field"]) == (422, "[1].feedback_key")
    clash = mint_list(
        [
            {"id": fresh, "run_id": run, "feedback_key": "b"},
            {"id": taken, "run_id": run, "feedback_key": "other"},
        ]
    )
    assert (clash.status_code, clash.json()["ids"]) == (409, [taken])
    twice = mint_list(
        [
            {"id": fresh, "run_id": run, "feedback_key": "b"},
            {"id": fresh, "run_id": run, "feedback_key": "c"},
        ]
    )
    assert twice.status_code == 409
    assert httpx.post(f"{live}/feedback/tokens/{fresh}", json={"score": 1}).status_code == 401
    empty = mint_list([])
    assert (empty.status_code, empty.json()["field"]) == (422, "body")
    too_many = mint_list([{"run_id": run, "feedback_key": "k"}] * 101)
    assert too_many.status_code == 422
    same = mint_list([{"id": taken, "run_id": run, "feedback_key": "a"}])
    assert (same.status_code, same.json()[0]["id"]) == (200, taken)


def _has(live: str, name: str, item_id: object) -> bool:
    """Whether the key ``name``'s project holds the item (the server is shared by tests)."""
    response = httpx.get(f"{live}/v1/feedback/{item_id}", headers=key(name))
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def test_langsmith_delete_feedback_needs_admin_and_stays_in_the_project(live: str) -> None:
    """delete_feedback removes the key's own feedback; without admin the SDK raises 403."""
    mine, theirs, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for name, feedback_id in (("b-all", mine), ("a-ingest", theirs)):
        _langsmith(live, name).create_feedback(
            uuid.uuid4(), key="k", score=1, feedback_id=feedback_id, session_id=session
        )
    assert _has(live, "b-all", mine)

    with pytest.raises(Exception, match="403"):
        _langsmith(live, "a-ingest").delete_feedback(theirs)
    _langsmith(live, "b-all").delete_feedback(theirs)  # another project's: nothing happens
    assert _has(live, "a-read", theirs)
    _langsmith(live, "b-all").delete_feedback(mine)
    assert not _has(live, "b-all", mine)

    answer = httpx.delete(f"{live}/feedback/{uuid.uuid4()}", headers=key("b-all"))
    assert answer.status_code == 200
    assert answer.json()["removed"]["items"] == 0
    long_id = httpx.delete(f"{live}/feedback/{'x' * 300}", headers=key("b-all"))
    assert long_id.status_code == 413  # ids are limited like every other id
    assert "feedback_id" in long_id.text
    keyless = httpx.delete(f"{live}/feedback/{mine}")
    assert keyless.status_code == 401


def test_langfuse_scores_delete_needs_admin_and_stays_in_the_project(live: str) -> None:
    """api.scores.delete removes the key's own score; an ingest key gets 403."""
    client = _langfuse(live, "b-langfuse")
    client.create_score(name="q", value=1.0, trace_id="b" * 32, score_id="lf-delete-me")
    client.flush()
    client.shutdown()
    assert _has(live, "b-all", "lf-delete-me")

    # (the SDK's client for a-ingest was shut down by another test: the route directly)
    denied = httpx.delete(f"{live}/api/public/scores/lf-delete-me", headers=key("a-ingest"))
    assert denied.status_code == 403
    assert _has(live, "b-all", "lf-delete-me")
    _langfuse(live, "b-langfuse").api.scores.delete("lf-delete-me")
    assert not _has(live, "b-all", "lf-delete-me")

    bad = httpx.delete(f"{live}/api/public/scores/{'x' * 300}", headers=key("b-all"))
    assert bad.status_code == 413
    assert "score_id" in bad.text
    unknown = httpx.delete(f"{live}/api/public/scores/lf-x?sesion=1", headers=key("b-all"))
    assert unknown.status_code == 422


def test_langsmith_read_and_list_feedback_round_trip(live: str) -> None:
    """read_feedback and list_feedback give back what create_feedback sent, per project."""
    client = _langsmith(live, "a-all")
    run, other_run, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(4)]
    client.create_feedback(
        run, key="correctness", score=0.5, comment="close", feedback_id=ids[0], session_id=session
    )
    client.create_feedback(run, key="tone", value="warm", feedback_id=ids[1], session_id=session)
    client.create_feedback(
        run, key="fix", correction={"output": "Canberra"}, feedback_id=ids[2], session_id=session
    )
    client.create_feedback(
        other_run, key="correctness", score=1, feedback_id=ids[3], session_id=session
    )

    first = client.read_feedback(ids[0])
    assert (first.id, first.run_id, first.session_id) == (ids[0], run, session)
    assert (first.key, first.score, first.comment) == ("correctness", 0.5, "close")
    assert client.read_feedback(ids[1]).value == "warm"
    assert client.read_feedback(ids[2]).correction == "Canberra"

    listed = list(client.list_feedback(run_ids=[run]))
    assert [f.id for f in listed] == [ids[2], ids[1], ids[0]]  # newest first
    both = list(client.list_feedback(run_ids=[run, other_run], feedback_key=["correctness"]))
    assert {f.id for f in both} == {ids[0], ids[3]}
    assert [f.id for f in client.list_feedback(run_ids=[run], limit=2)] == [ids[2], ids[1]]
    paged = httpx.get(
        f"{live}/feedback", params={"run": str(run), "limit": 1, "offset": 1}, headers=key("a-all")
    )
    assert [f["id"] for f in paged.json()] == [str(ids[1])]

    with pytest.raises(Exception, match="404"):
        _langsmith(live, "b-all").read_feedback(ids[0])  # another project's
    assert list(_langsmith(live, "b-all").list_feedback(run_ids=[run])) == []
    with pytest.raises(Exception, match="403"):
        _langsmith(live, "a-ingest").read_feedback(ids[0])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"runs": "x"}, "runs"),
        ({"limit": ["1", "2"]}, "limit"),
        ({"run": "x" * 300}, "run"),
    ],
)
def test_langsmith_list_feedback_names_a_bad_parameter(
    live: str, params: dict[str, Any], field: str
) -> None:
    """Bad paging, unknown or repeated parameters are refused naming them."""
    answer = httpx.get(f"{live}/feedback", params=params, headers=key("a-all"))
    assert answer.status_code in (413, 422), answer.text
    assert field in answer.text


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            FeedbackItem(FeedbackType.TEXT, "too long", {"trace_id": "not-a-uuid"}),
            {"key": "text", "comment": "too long", "run_id": None, "score": None},
        ),
        (
            FeedbackItem(FeedbackType.LABEL, {"label": "tone", "input": {"a": 1}}, {}),
            {"key": "label", "value": {"a": 1}},
        ),
        (
            FeedbackItem(
                FeedbackType.RATING,
                4,
                {"comment": "ok"},
                {"key": "k", "langsmith_correction": {"output": "x"}, "langsmith_extra": {"e": 1}},
            ),
            {
                "key": "k",
                "score": 4,
                "comment": "ok",
                "correction": {"output": "x"},
                "extra": {"e": 1},
            },
        ),
        (
            FeedbackItem(FeedbackType.CORRECTION, {"original": "a", "corrected": "b"}, {}),
            {"key": "correction", "correction": "b", "feedback_source": None},
        ),
    ],
)
def test_langsmith_feedback_out_maps_every_type(
    item: FeedbackItem, expected: dict[str, Any]
) -> None:
    """Items from any route read back as LangSmith feedback by type."""
    out = langsmith_feedback_out(item)
    assert {k: out[k] for k in expected} == expected
    assert out["id"] == item.id


def _score_event(event_id: str, score_id: str, value: float) -> dict[str, Any]:
    body = {"id": score_id, "traceId": "tr-up", "name": "q", "value": value}
    return {
        "id": event_id,
        "type": "score-create",
        "timestamp": datetime.now(UTC).isoformat(),
        "body": {**body, "dataType": "NUMERIC"},
    }


def test_langfuse_scores_sent_again_under_their_id_are_updates(live: str) -> None:
    """create_score twice with one score_id updates it (Langfuse's upsert), per project."""
    client = _langfuse(live, "a-langfuse")  # a key no other test shuts down
    client.create_score(name="q", value=0.2, trace_id="c" * 32, score_id="lf-upd")
    client.flush()
    client.create_score(name="q", value=0.9, trace_id="c" * 32, score_id="lf-upd", comment="ok")
    client.flush()
    client.shutdown()
    item = httpx.get(f"{live}/v1/feedback/lf-upd", headers=key("a-read")).json()
    assert (item["value"], item["context"]["comment"]) == (0.9, "ok")
    stats = httpx.get(f"{live}/v1/stats", headers=key("a-read")).json()
    assert (stats["total_count"], stats["average_rating"]) == (1, 0.9)

    auth = ("a-ingest", SECRETS["a-ingest"][0])
    events = [_score_event("e1", "lf-twice", 0.1), _score_event("e2", "lf-twice", 0.7)]
    answer = httpx.post(f"{live}/api/public/ingestion", json={"batch": events}, auth=auth)
    assert answer.json()["errors"] == []
    item = httpx.get(f"{live}/v1/feedback/lf-twice", headers=key("a-read")).json()
    assert item["value"] == 0.7  # the last of the batch

    theirs = ("b-all", SECRETS["b-all"][0])
    taken = [_score_event("e3", "lf-upd", 0.0)]
    answer = httpx.post(f"{live}/api/public/ingestion", json={"batch": taken}, auth=theirs)
    assert answer.status_code == 207  # acknowledged; the writer sets it aside (conflict)
    item = httpx.get(f"{live}/v1/feedback/lf-upd", headers=key("a-read")).json()
    assert item["value"] == 0.9  # another project cannot overwrite it


def test_langsmith_update_feedback_changes_only_the_fields_given(live: str) -> None:
    """update_feedback replaces the stored version; a null clears; other projects: 404."""
    client = _langsmith(live, "a-all")
    run, session, feedback_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    client.create_feedback(
        run, key="quality", score=0.2, comment="meh", feedback_id=feedback_id, session_id=session
    )
    client.update_feedback(feedback_id, score=0.9, comment=None)
    item = httpx.get(f"{live}/v1/feedback/{feedback_id}", headers=key("a-read")).json()
    assert (item["type"], item["value"]) == ("rating", 0.9)
    assert item["context"] == {
        "trace_id": str(run),
        "session_id": str(session),
        "owner_id": "proj-a",
    }
    assert item["metadata"]["key"] == "quality"
    read = client.read_feedback(feedback_id)
    assert (read.score, read.comment, read.run_id) == (0.9, None, run)
    client.update_feedback(feedback_id, correction={"output": "better"})
    assert client.read_feedback(feedback_id).correction == {"output": "better"}
    stats = httpx.get(f"{live}/v1/stats", headers=key("a-read")).json()
    assert (stats["total_count"], stats["average_rating"]) == (1, 0.9)

    with pytest.raises(Exception, match="404"):
        _langsmith(live, "b-all").update_feedback(feedback_id, score=0)
    unknown = httpx.patch(f"{live}/feedback/{feedback_id}", json={"scroe": 1}, headers=key("a-all"))
    assert unknown.status_code == 422
    assert "scroe" in unknown.text
    empty = httpx.patch(
        f"{live}/feedback/{feedback_id}",
        json={"score": None, "value": None, "correction": None, "comment": None},
        headers=key("a-all"),
    )
    assert empty.status_code == 422
    assert httpx.patch(f"{live}/feedback/{feedback_id}", json={"score": 1}).status_code == 401
    assert client.read_feedback(feedback_id).score == 0.9


def test_langsmith_update_keeps_what_it_does_not_change(live: str) -> None:
    """A comment-only update keeps the thumbs scale, extra, source and key; lists dedupe runs."""
    client = _langsmith(live, "a-all")
    run, session, feedback_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    client.create_feedback(
        run,
        key="helpful",
        score=True,
        extra={"why": "fast"},
        feedback_id=feedback_id,
        session_id=session,
    )
    client.update_feedback(feedback_id, comment="really")
    item = httpx.get(f"{live}/v1/feedback/{feedback_id}", headers=key("a-read")).json()
    assert item["metadata"]["scale"] == "thumbs"
    assert item["metadata"]["source"] == "langsmith"
    read = client.read_feedback(feedback_id)
    assert (read.key, read.score, read.comment, read.extra) == (
        "helpful",
        1,
        "really",
        {"why": "fast"},
    )
    listed = httpx.get(
        f"{live}/feedback", params=[("run", str(run)), ("run", str(run))], headers=key("a-all")
    )
    assert [f["id"] for f in listed.json()] == [str(feedback_id)]
