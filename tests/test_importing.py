"""Import: the raw export round-trips, peer exports map, bad records are reported by line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from ai_feedback import (
    FeedbackCollector,
    FeedbackConfig,
    FeedbackItem,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.export import export
from ai_feedback.importing import import_file
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
