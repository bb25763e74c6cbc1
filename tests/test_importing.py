"""Import: the raw export round-trips, peer exports map, bad records are reported by line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from mlflow.entities import (
    Assessment,
    AssessmentError,
    AssessmentSource,
    Expectation,
    Feedback,
    Trace,
    TraceData,
    TraceInfo,
    TraceState,
)
from mlflow.entities.trace_location import TraceLocation

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackFilter,
    FeedbackItem,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.export import export
from ai_feedback.importing import Source, import_file
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.training_session import training_session


def _write_lines(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


async def test_raw_export_imports_back_losslessly_and_idempotently(tmp_path: Path) -> None:
    """Export raw -> import -> export raw gives the same bytes; importing twice stores once."""
    collector = await training_session()
    first = tmp_path / "first.jsonl"
    await export(collector, "raw", first)
    async with await SQLiteFeedbackStore.open(tmp_path / "copy.db") as copy:
        summary = await import_file(copy, first)
        assert (summary.read, summary.imported, summary.invalid) == (11, 11, 0)
        assert summary.by_source == {"raw": 11}
        second = tmp_path / "second.jsonl"
        await export(copy, "raw", second)
        assert second.read_bytes() == first.read_bytes()
        again = await import_file(copy, first)
        assert (again.imported, again.invalid) == (11, 0)
        assert len([i async for i in copy.scan()]) == 11


async def test_invalid_records_are_reported_by_line_and_skipped(tmp_path: Path) -> None:
    """Bad JSON, wrong shapes, bad values and conflicts are skipped; the rest is stored."""
    store = MemoryFeedbackStore()
    stored = FeedbackItem(FeedbackType.RATING, 3)
    await store.save(stored)
    good = FeedbackItem(FeedbackType.TEXT, "fine", context={"session_id": "s"})
    path = _write_lines(
        tmp_path / "mixed.jsonl",
        [
            good.to_dict(),  # 1
            b"{not json",  # 2
            [1, 2],  # 3
            {"hello": "world"},  # 4
            {**good.to_dict(), "id": "x1", "feedback_type": "stars"},  # 5
            {**stored.to_dict(), "value": 5},  # 6: another item under a stored id
            {**good.to_dict(), "id": "x2", "value": ""},  # 7
            {"feedback_type": "rating", "value": 4},  # 8: no id: a new one is made
        ],
    )
    summary = await import_file(store, path)
    assert (summary.read, summary.imported, summary.invalid) == (8, 2, 6)
    assert [(p.line, p.field) for p in summary.problems] == [
        (2, "record"),
        (3, "record"),
        (4, "record"),
        (5, "feedback_type"),
        (7, "value"),
        (6, "id"),
    ]
    assert str(summary.problems[0]).startswith("line 2: Invalid 'record': is not valid JSON")
    assert "stars" in summary.problems[3].message
    assert await store.get(good.id) == good
    assert await store.get("x1") is None
    assert (await store.get(stored.id)) == stored  # the stored item is unchanged
    assert len(await store.find_by_type(FeedbackType.RATING)) == 2


async def test_langfuse_scores_from_its_api_or_export(tmp_path: Path) -> None:
    """Langfuse scores (GET /api/public/scores rows, or a page of them) become items."""
    scores: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "traceId": "trace-1",
            "sessionId": "sess-1",
            "name": "quality",
            "value": 0.9,
            "dataType": "NUMERIC",
            "source": "API",
            "comment": "good",
            "timestamp": "2026-11-01T10:00:00.000Z",
            "createdAt": "2026-11-01T10:00:01.000Z",
        },
        {
            "id": str(uuid.uuid4()),
            "traceId": "trace-2",
            "name": "helpful",
            "value": 1,
            "stringValue": "True",
            "dataType": "BOOLEAN",
            "timestamp": "2026-11-01T10:00:00Z",
        },
        {
            "id": str(uuid.uuid4()),
            "traceId": "trace-3",
            "name": "topic",
            "value": 0,
            "stringValue": "billing",
            "dataType": "CATEGORICAL",
            "timestamp": "2026-11-01T10:00:00Z",
        },
    ]
    page = tmp_path / "page.json"
    page.write_bytes(orjson.dumps({"data": scores, "meta": {"page": 1, "totalItems": 3}}))
    store = MemoryFeedbackStore()
    summary = await import_file(store, page)
    assert (summary.imported, summary.invalid, summary.by_source) == (3, 0, {"langfuse": 3})
    numeric, boolean, categorical = [await store.get(s["id"]) for s in scores]
    assert numeric is not None
    assert boolean is not None
    assert categorical is not None
    assert (numeric.value, numeric.trace_id, numeric.session_id) == (0.9, "trace-1", "sess-1")
    assert numeric.context["comment"] == "good"
    assert numeric.created_at.isoformat() == "2026-11-01T10:00:00+00:00"
    assert (boolean.value, boolean.metadata["scale"]) == (1, "thumbs")
    assert (categorical.feedback_type, categorical.value["label"]) == (
        FeedbackType.LABEL,
        "billing",
    )
    assert await store.get_raw_payload(scores[0]["id"]) == scores[0]
    lines = _write_lines(tmp_path / "scores.jsonl", scores)
    assert (await import_file(store, lines, source="langfuse")).imported == 3  # idempotent


async def test_langsmith_feedback_from_list_feedback(tmp_path: Path) -> None:
    """LangSmith feedback records (Client.list_feedback, as JSON) become items."""
    records: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "run_id": str(uuid.uuid4()),
            "trace_id": str(uuid.uuid4()),
            "key": "correctness",
            "score": 1,
            "comment": "right",
            "created_at": "2026-11-02T08:00:00+00:00",
            "modified_at": "2026-11-02T08:00:00+00:00",
            "feedback_source": {"type": "api"},
        },
        {
            "id": str(uuid.uuid4()),
            "run_id": str(uuid.uuid4()),
            "key": "fix",
            "correction": {"output": "Paris"},
            "created_at": "2026-11-02T08:00:00+00:00",
        },
    ]
    path = _write_lines(tmp_path / "ls.jsonl", records)
    store = MemoryFeedbackStore()
    summary = await import_file(store, path)
    assert (summary.imported, summary.by_source) == (2, {"langsmith": 2})
    rating = await store.get(records[0]["id"])
    correction = await store.get(records[1]["id"])
    assert rating is not None
    assert correction is not None
    assert (rating.value, rating.trace_id, rating.metadata["key"]) == (
        1,
        records[0]["run_id"],
        "correctness",
    )
    assert correction.value == {"original": "", "corrected": "Paris"}


async def test_a_collector_target_uses_its_store(tmp_path: Path) -> None:
    """Importing into a collector writes its pending items first, then into its store."""
    store = MemoryFeedbackStore()
    collector = FeedbackCollector(store, FeedbackConfig(async_processing=False))
    item = FeedbackItem(FeedbackType.RATING, 5, context={"session_id": "s"})
    path = _write_lines(tmp_path / "one.jsonl", [item.to_dict()])
    assert (await import_file(collector, path)).imported == 1
    assert await store.find_by_session("s") == [item]


@pytest.mark.parametrize(
    ("target", "kwargs", "field"),
    [
        (MemoryFeedbackStore(), {"source": "csv"}, "source"),
        (object(), {}, "target"),
    ],
)
async def test_bad_import_arguments_name_the_field(
    tmp_path: Path, target: object, kwargs: dict[str, Any], field: str
) -> None:
    """An unknown source or a target that cannot store is refused before reading."""
    path = _write_lines(tmp_path / "x.jsonl", [FeedbackItem(FeedbackType.RATING, 1).to_dict()])
    with pytest.raises(FeedbackValidationError) as info:
        await import_file(target, path, **kwargs)
    assert info.value.field == field


async def test_a_json_array_reports_positions(tmp_path: Path) -> None:
    """A JSON array is read whole; problems name the record's position from 1."""
    path = tmp_path / "array.json"
    path.write_bytes(orjson.dumps([FeedbackItem(FeedbackType.RATING, 1).to_dict(), {"x": 1}]))
    summary = await import_file(MemoryFeedbackStore(), path)
    assert (summary.imported, [p.line for p in summary.problems]) == (1, [2])
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"[{")
    summary = await import_file(MemoryFeedbackStore(), broken)
    assert (summary.imported, summary.invalid) == (0, 1)


async def test_a_pretty_printed_page_is_one_document(tmp_path: Path) -> None:
    """A Langfuse page saved with indentation is read whole, not line by line."""
    score = {"id": str(uuid.uuid4()), "traceId": "t", "value": 1, "dataType": "NUMERIC"}
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps({"data": [score], "meta": {}}, option=orjson.OPT_INDENT_2))
    summary = await import_file(MemoryFeedbackStore(), path)
    assert (summary.imported, summary.invalid) == (1, 0)


def _mlflow_trace(trace_id: str, *assessments: Assessment) -> Trace:
    """A trace as MLflow's own entities build it, holding ``assessments``."""
    info = TraceInfo(
        trace_id=trace_id,
        trace_location=TraceLocation.from_experiment_id("0"),
        request_time=1_790_000_000_000,
        state=TraceState.OK,
        assessments=list(assessments),
    )
    return Trace(info=info, data=TraceData(spans=[]))


def _as_dict(assessment: Assessment) -> dict[str, Any]:
    """What MLflow writes for an assessment (its REST form)."""
    written: dict[str, Any] = assessment.to_dictionary()  # type: ignore[no-untyped-call]
    return written


def _mlflow_assessments(trace_id: str) -> list[Assessment]:
    """A rating, a thumbs, a label, an expectation and a failed judge, with server ids."""
    human = AssessmentSource(source_type="HUMAN", source_id="reviewer-1")
    made = [
        Feedback(
            name="relevance",
            value=4,
            rationale="on topic",
            source=human,
            trace_id=trace_id,
            metadata={"model": "gpt-4o"},
            span_id="span-1",
        ),
        Feedback(name="thumbs", value=False, trace_id=trace_id),
        Feedback(name="tone", value="polite", trace_id=trace_id),
        Expectation(name="facts", value={"expected": ["Paris"]}, trace_id=trace_id),
        Feedback(name="judge", error=AssessmentError(error_code="TIMEOUT"), trace_id=trace_id),
    ]
    for number, assessment in enumerate(made):
        assessment.assessment_id = f"a-{trace_id}-{number}"
    return made


async def test_mlflow_traces_import_each_assessment(tmp_path: Path) -> None:
    """Trace.to_json lines: every assessment becomes its item; a failed judge is reported."""
    first, second = _mlflow_assessments("tr-1"), _mlflow_assessments("tr-2")
    lines = [
        _mlflow_trace("tr-1", *first).to_json().encode(),
        _mlflow_trace("tr-2", *second[:2]).to_json().encode(),
        _mlflow_trace("tr-3").to_json().encode(),  # no assessments: nothing to import
    ]
    path = _write_lines(tmp_path / "traces.jsonl", lines)
    async with await SQLiteFeedbackStore.open(tmp_path / "mlflow.db") as store:
        summary = await import_file(store, path)
        assert (summary.read, summary.imported, summary.invalid) == (3, 6, 1)
        assert summary.by_source == {"mlflow": 6}
        [problem] = summary.problems
        assert (problem.line, problem.field) == (1, "info.assessments[4].feedback.value")
        assert "records nothing" in problem.message
        rating = await store.get("a-tr-1-0")
        assert rating is not None
        assert (rating.feedback_type, rating.value) == (FeedbackType.RATING, 4.0)
        assert rating.context == {"trace_id": "tr-1", "span_id": "span-1", "comment": "on topic"}
        assert rating.metadata == {
            "source": "mlflow",
            "name": "relevance",
            "mlflow_source": {"source_type": "HUMAN", "source_id": "reviewer-1"},
            "mlflow_metadata": {"model": "gpt-4o"},
        }
        assert rating.created_at.timestamp() * 1000 == first[0].create_time_ms
        thumbs, tone, facts = [await store.get(f"a-tr-1-{n}") for n in (1, 2, 3)]
        assert thumbs is not None
        assert (thumbs.value, thumbs.metadata["scale"]) == (0, "thumbs")
        assert tone is not None
        assert tone.value == {"label": "polite", "input": None}
        assert facts is not None
        assert facts.feedback_type is FeedbackType.CORRECTION
        assert orjson.loads(facts.value["corrected"]) == {"expected": ["Paris"]}
        assert await store.get_raw_payload("a-tr-1-2") == _as_dict(first[2])
        again = await import_file(store, path)  # ids are MLflow's: stored once
        assert (again.imported, again.invalid) == (6, 1)
        assert len([i async for i in store.scan()]) == 6


async def test_mlflow_pages_single_traces_and_assessments(tmp_path: Path) -> None:
    """A search page, a pretty-printed trace and assessments on their own are read."""
    made = _mlflow_assessments("tr-9")
    trace = _mlflow_trace("tr-9", *made[:2])
    page = tmp_path / "page.json"
    page.write_bytes(orjson.dumps({"traces": [trace.info.to_dict()], "next_page_token": "x"}))
    pretty = tmp_path / "trace.json"
    pretty.write_text(_mlflow_trace("tr-9", made[2]).to_json(pretty=True))
    single = _write_lines(tmp_path / "single.jsonl", [_as_dict(made[3])])
    no_id = {**_as_dict(made[0]), "assessment_name": "again"}
    del no_id["assessment_id"]
    anonymous = _write_lines(tmp_path / "anonymous.jsonl", [no_id])
    store = MemoryFeedbackStore()
    for path, count in ((page, 2), (pretty, 1), (single, 1), (anonymous, 1), (anonymous, 1)):
        source: Source = "mlflow" if path is page else "auto"
        summary = await import_file(store, path, source=source)
        assert (summary.read, summary.imported, summary.invalid) == (1, count, 0), path
    items = await store.query(limit=10)
    assert sorted(i.metadata["name"] for i in items) == [
        "again",
        "facts",
        "relevance",
        "thumbs",
        "tone",
    ]  # the assessment without an id got one from its content: imported twice, stored once


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"info": "x"}, "info"),
        ({"info": {"assessments": []}}, "info.trace_id"),
        ({"trace_info": {"trace_id": "t", "assessments": {}}}, "trace_info.assessments"),
        ({"info": {"trace_id": "t", "assessments": ["x"]}}, "info.assessments[0]"),
        (
            {
                "info": {
                    "trace_id": "t",
                    "assessments": [{"trace_id": "u", "feedback": {"value": 1}}],
                }
            },
            "info.assessments[0].trace_id",
        ),
        (
            {
                "info": {
                    "trace_id": "t",
                    "assessments": [{"feedback": {"value": 1}, "rationale": 5}],
                }
            },
            "info.assessments[0].rationale",
        ),
        (
            {"info": {"trace_id": "t" * 300, "assessments": [{"feedback": {"value": 1}}]}},
            "info.trace_id",
        ),
        ({"trace_id": "t", "assessment_name": "q"}, "record"),
        (
            {"trace_id": "t", "assessment_name": "q", "feedback": {"value": "x" * 10_001}},
            "feedback.value",
        ),
        ({"trace_id": "t", "expectation": {"value": 1}, "create_time": "soon"}, "create_time"),
        ({"assessment_name": "q", "feedback": {"value": 1}}, "trace_id"),
    ],
)
async def test_bad_mlflow_records_name_the_field(
    tmp_path: Path, record: dict[str, Any], field: str
) -> None:
    """A malformed trace or assessment is reported naming MLflow's field; nothing is stored."""
    store = MemoryFeedbackStore()
    summary = await import_file(store, _write_lines(tmp_path / "bad.jsonl", [record]))
    assert (summary.imported, summary.invalid) == (0, 1)
    assert [(p.line, p.field) for p in summary.problems] == [(1, field)]
    assert await store.query() == []


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"traceId": "t", "dataType": "NUMERIC", "value": True, "comment": "\u0000"}, "comment"),
        ({"traceId": "t" * 300, "dataType": "NUMERIC", "value": 1}, "traceId"),
        ({"traceId": "t", "dataType": "BOOLEAN", "value": 7}, "value"),
        ({"run_id": "r", "key": "k", "score": 2.0**60}, "score"),
        ({"run_id": "r", "key": "k", "value": "a\u0000"}, "value"),
        ({"run_id": 12345, "key": "k", "score": 1}, "run_id"),
        ({"run_id": "r", "key": "k", "correction": "a\u0000"}, "correction"),
    ],
)
async def test_peer_records_are_reported_in_their_own_field_names(
    tmp_path: Path, record: dict[str, Any], field: str
) -> None:
    """A bad Langfuse or LangSmith record names the field of the export, not of the item."""
    summary = await import_file(MemoryFeedbackStore(), _write_lines(tmp_path / "x.jsonl", [record]))
    assert [(p.line, p.field) for p in summary.problems] == [(1, field)]


async def test_a_raw_record_over_a_limit_is_skipped_by_line_not_the_whole_file(
    tmp_path: Path,
) -> None:
    """A raw line over the text or payload limit is reported; the lines around it are stored."""
    good = [FeedbackItem(FeedbackType.TEXT, f"fine {i}").to_dict() for i in range(3)]
    long_text = {**FeedbackItem(FeedbackType.TEXT, "x").to_dict(), "value": "x" * 10_001}
    big_metadata = {
        **FeedbackItem(FeedbackType.RATING, 1).to_dict(),
        "metadata": {"k": "x" * 60_000},
    }
    twin = {**good[0], "value": "another text, same id"}
    path = _write_lines(
        tmp_path / "raw.jsonl", [good[0], long_text, good[1], big_metadata, good[2], twin]
    )
    store = MemoryFeedbackStore()
    summary = await import_file(store, path)
    assert (summary.read, summary.imported, summary.invalid) == (6, 3, 3)
    assert [(p.line, p.field) for p in summary.problems] == [
        (2, "value"),
        (4, "metadata"),
        (6, "id"),
    ]
    assert "earlier in this import" in summary.problems[2].message
    same_twice = _write_lines(tmp_path / "twice.jsonl", [good[0], good[0]])
    again = await import_file(MemoryFeedbackStore(), same_twice)
    assert (again.imported, again.invalid) == (2, 0)
    assert len(store) == 3


async def test_a_langsmith_thumbs_with_a_null_score_stays_thumbs(tmp_path: Path) -> None:
    """list_feedback() dumps hold "score": null beside a boolean value: still thumbs."""
    item_id = str(uuid.uuid4())
    record = {"id": item_id, "run_id": "r", "key": "thumbs", "score": None, "value": True}
    store = MemoryFeedbackStore()
    await import_file(store, _write_lines(tmp_path / "ls.jsonl", [record]))
    item = await store.get(item_id)
    assert item is not None
    assert (item.value, item.metadata["scale"]) == (1, "thumbs")


async def test_repeated_records_share_the_first_ones_outcome(tmp_path: Path) -> None:
    """The same record twice is imported once (any time, 1 == 1.0); both refused together."""
    score = {"id": "s-1", "traceId": "t", "dataType": "NUMERIC", "value": 1}  # no timestamp
    feedback = {"id": "f-1", "run_id": "r", "key": "k", "score": 1}
    store = MemoryFeedbackStore()
    await store.save(FeedbackItem(FeedbackType.RATING, 5, id="taken"))
    taken = {"id": "taken", "traceId": "t", "dataType": "NUMERIC", "value": 2}
    records = [score, score, feedback, {**feedback, "score": 1.0}, taken, taken]
    summary = await import_file(store, _write_lines(tmp_path / "twice.jsonl", records))
    assert (summary.read, summary.imported, summary.invalid) == (6, 4, 2)
    assert [(p.line, p.field) for p in summary.problems] == [(5, "id"), (6, "id")]
    assert [i.value for i in await store.query()] == [1, 1, 5]


async def test_a_huge_integer_on_the_first_line_is_that_records_problem(tmp_path: Path) -> None:
    """A number orjson cannot hold does not make JSON Lines look like one broken document."""
    huge = b'{"feedback_type": "rating", "value": 1, "metadata": {"n": ' + b"9" * 500 + b"}}"
    good = orjson.dumps(FeedbackItem(FeedbackType.RATING, 2).to_dict())
    path = _write_lines(tmp_path / "huge.jsonl", [huge, good])
    summary = await import_file(MemoryFeedbackStore(), path)
    assert (summary.read, summary.imported) == (2, 1)
    assert [(p.line, p.field) for p in summary.problems] == [(1, "metadata.n")]


async def test_a_damaged_first_line_is_one_problem_not_the_whole_file(tmp_path: Path) -> None:
    """JSON Lines whose first line is cut short: that line is reported, the rest imported."""
    items = [FeedbackItem(FeedbackType.RATING, n) for n in range(1, 5)]
    path = _write_lines(tmp_path / "first-bad.jsonl", [b'{"id": "x", "value', *items])
    summary = await import_file(MemoryFeedbackStore(), path)
    assert (summary.read, summary.imported, summary.invalid) == (5, 4, 1)
    assert [(p.line, p.field) for p in summary.problems] == [(1, "record")]
    arrays = _write_lines(tmp_path / "arrays.jsonl", [[items[0].to_dict()], [items[1].to_dict()]])
    summary = await import_file(MemoryFeedbackStore(), arrays)
    assert [(p.line, p.field) for p in summary.problems] == [(1, "record"), (2, "record")]


async def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    """Files saved with a UTF-8 BOM (some Windows editors) import every line."""
    items = [FeedbackItem(FeedbackType.RATING, n) for n in range(1, 3)]
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(orjson.dumps(i.to_dict()) for i in items))
    summary = await import_file(MemoryFeedbackStore(), path)
    assert (summary.imported, summary.invalid) == (2, 0)
    page = tmp_path / "bom.json"
    page.write_bytes(b"\xef\xbb\xbf" + orjson.dumps([i.to_dict() for i in items]))
    assert (await import_file(MemoryFeedbackStore(), page)).imported == 2


async def test_records_without_ids_but_with_times_import_once(tmp_path: Path) -> None:
    """Importing twice: a record with a time and no id is stored once; without either, twice."""
    when = "2026-11-30T10:00:00+00:00"
    path = _write_lines(
        tmp_path / "no-ids.jsonl",
        [
            {"feedback_type": "rating", "value": 4, "created_at": when},
            {"traceId": "t1", "name": "q", "value": 1, "dataType": "NUMERIC", "timestamp": when},
            {"run_id": str(uuid.uuid4()), "key": "k", "score": 1, "created_at": when},
            {"feedback_type": "rating", "value": 2},  # nothing to derive an id from
        ],
    )
    store = MemoryFeedbackStore()
    for _ in range(2):
        summary = await import_file(store, path)
        assert (summary.imported, summary.invalid) == (4, 0)
    assert len(store) == 5


async def test_an_owner_is_given_to_every_record(tmp_path: Path) -> None:
    """owner_id puts every item in one project; a record naming another is skipped."""
    mine = FeedbackItem(FeedbackType.RATING, 4, context={"owner_id": "proj-a"})
    theirs = FeedbackItem(FeedbackType.RATING, 2, context={"owner_id": "proj-b"})
    path = _write_lines(
        tmp_path / "owned.jsonl",
        [
            FeedbackItem(FeedbackType.TEXT, "fine").to_dict(),
            mine.to_dict(),
            theirs.to_dict(),
            {"traceId": "t1", "name": "q", "value": 1, "dataType": "NUMERIC"},
            {"run_id": str(uuid.uuid4()), "key": "k", "score": 1},
        ],
    )
    store = MemoryFeedbackStore()
    summary = await import_file(store, path, owner_id="proj-a")
    assert (summary.imported, summary.invalid) == (4, 1)
    assert [(p.line, p.field) for p in summary.problems] == [(3, "context.owner_id")]
    assert "the owner this import writes for" in summary.problems[0].message
    assert {i.owner_id for i in await store.query(FeedbackFilter(), limit=10)} == {"proj-a"}
    for bad in ("", "x" * 300):
        with pytest.raises(FeedbackValidationError) as caught:
            await import_file(store, path, owner_id=bad)
        assert caught.value.field == "owner_id"


async def test_records_of_one_id_in_later_batches_compare_with_what_is_stored(
    tmp_path: Path,
) -> None:
    """A repeat of a stored item in a later batch is imported, wherever it falls."""
    first = FeedbackItem(FeedbackType.RATING, 1, id="i0")
    other = FeedbackItem(FeedbackType.RATING, 5, id="i0")
    fillers = [FeedbackItem(FeedbackType.RATING, 3).to_dict() for _ in range(1200)]
    path = _write_lines(
        tmp_path / "dups.jsonl",
        [first.to_dict(), *fillers, other.to_dict(), first.to_dict(), first.to_dict()],
    )
    store = MemoryFeedbackStore()
    summary = await import_file(store, path)
    assert (summary.imported, summary.invalid) == (1203, 1)
    assert [(p.line, p.field) for p in summary.problems] == [(1202, "id")]
    assert "already stored" in summary.problems[0].message
    assert await store.get("i0") == first
