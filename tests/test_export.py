"""Export: training files in the exact shapes OpenAI and TRL read, labels and raw items."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from ai_feedback import (
    FeedbackFilter,
    FeedbackItem,
    FeedbackStorageError,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
)
from ai_feedback.export import ExportOptions, export, export_chunks
from tests.training_session import SYSTEM, training_session


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _lines(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _unordered(rows: list[Any]) -> list[bytes]:
    return sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in rows)


def _check_openai_chat_row(row: dict[str, Any]) -> None:
    """OpenAI's chat fine-tuning line: only `messages`, roles it knows, an assistant last."""
    assert set(row) == {"messages"}
    for message in row["messages"]:
        assert set(message) == {"role", "content"}
        assert message["role"] in {"system", "user", "assistant"}
        assert isinstance(message["content"], str)
    assert row["messages"][-1]["role"] == "assistant"
    assert any(m["role"] == "user" for m in row["messages"])


def _check_openai_preference_row(row: dict[str, Any]) -> None:
    """OpenAI's preference line: input.messages and one assistant message per output."""
    assert set(row) == {"input", "preferred_output", "non_preferred_output"}
    assert set(row["input"]) == {"messages"}
    assert row["input"]["messages"][-1]["role"] == "user"
    for key in ("preferred_output", "non_preferred_output"):
        [message] = row[key]
        assert set(message) == {"role", "content"}
        assert message["role"] == "assistant"
        assert isinstance(message["content"], str)


async def test_sft_openai_uses_corrections_and_good_ratings(tmp_path: Path) -> None:
    """SFT targets are corrected outputs and outputs rated >= min_rating; nothing is invented."""
    collector = await training_session()
    out = tmp_path / "sft.jsonl"
    summary = await export(collector, "sft", out)
    rows = _lines(out)
    for row in rows:
        _check_openai_chat_row(row)
    assert _unordered(rows) == _unordered(
        [
            {"messages": [_user("What is the capital of France?"), _assistant("Paris")]},
            {"messages": [_user("2+2?"), _assistant("4")]},
            {"messages": [_user("Write a haiku"), _assistant("Autumn moonlight")]},
            {"messages": [SYSTEM, _user("Hi"), _assistant("Hello!")]},
        ]
    )
    assert (summary.scanned, summary.written, summary.path) == (11, 4, str(out))
    assert summary.skipped == {
        "label feedback is not used by sft": 2,
        "no prompt captured": 2,
        "rating below min_rating": 2,
        "text feedback is not used by sft": 1,
    }


async def test_dpo_pairs_corrections_and_differently_rated_outputs(tmp_path: Path) -> None:
    """Corrected beats original; for one prompt the best rated output beats the worst."""
    collector = await training_session()
    out = tmp_path / "dpo.jsonl"
    summary = await export(collector, "dpo", out)
    rows = _lines(out)
    for row in rows:
        _check_openai_preference_row(row)
    assert _unordered(rows) == _unordered(
        [
            {
                "input": {"messages": [_user("What is the capital of France?")]},
                "preferred_output": [_assistant("Paris")],
                "non_preferred_output": [_assistant("Lyon")],
            },
            {
                "input": {"messages": [_user("2+2?")]},
                "preferred_output": [_assistant("4")],
                "non_preferred_output": [_assistant("5")],
            },
        ]
    )
    assert summary.skipped["no differently rated output for the same prompt"] == 3
    assert summary.skipped["no prompt captured"] == 2

    trl = tmp_path / "dpo_trl.jsonl"
    await export(collector, "dpo", trl, flavor="trl", style="standard")
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in _lines(trl)} == {
        ("What is the capital of France?", "Paris", "Lyon"),
        ("2+2?", "4", "5"),
    }


async def test_kto_labels_ratings_by_threshold_and_thumbs(tmp_path: Path) -> None:
    """KTO: >= min_rating is True, <= max_rating False, in between skipped; thumbs 1 is True."""
    collector = await training_session()
    out = tmp_path / "kto.jsonl"
    summary = await export(collector, "kto", out, style="standard")
    assert sorted((r["prompt"], r["completion"], r["label"]) for r in _lines(out)) == [
        ("2+2?", "4", True),
        ("2+2?", "5", False),
        ("Write a haiku", "Autumn moonlight", True),
    ]
    assert summary.skipped["rating between max_rating and min_rating"] == 1
    assert summary.skipped["prompt is a conversation (use the conversational style)"] == 1
    conversational = tmp_path / "kto_chat.jsonl"
    await export(collector, "kto", conversational, min_rating=3, max_rating=1)
    rows = _lines(conversational)
    assert len(rows) == 5
    assert {
        "prompt": [SYSTEM, _user("Hi")],
        "completion": [_assistant("Hello!")],
        "label": True,
    } in rows


async def test_trl_files_load_in_datasets_with_trl_columns(tmp_path: Path) -> None:
    """Each TRL file loads with datasets.load_dataset("json") and has TRL's column names."""
    from datasets import load_dataset  # noqa: PLC0415 - slow to import

    collector = await training_session()
    expected = {
        "sft": {"prompt", "completion"},
        "dpo": {"prompt", "chosen", "rejected"},
        "kto": {"prompt", "completion", "label"},
    }
    for kind, columns in expected.items():
        for style in ("conversational", "standard"):
            path = tmp_path / f"{kind}-{style}.jsonl"
            summary = await export(collector, kind, path, flavor="trl", style=style)  # type: ignore[arg-type]
            data = load_dataset(
                "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
            )
            assert set(data.column_names) == columns, (kind, style)
            assert data.num_rows == summary.written > 0
            if style == "conversational":
                assert data[0]["prompt"][-1]["role"] == "user"
            else:
                assert isinstance(data[0]["prompt"], str)
    openai = tmp_path / "openai.jsonl"
    await export(collector, "sft", openai)
    data = load_dataset(
        "json", data_files=str(openai), split="train", cache_dir=str(tmp_path / "h")
    )
    assert data.column_names == ["messages"]


async def test_labels_as_csv_and_jsonl_keep_their_input(tmp_path: Path) -> None:
    """Label rows carry the label and its input; a label without an input is skipped."""
    collector = await training_session()
    summary = await export(collector, "labels", tmp_path / "labels.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "labels.csv").read_text())))
    assert [(r["label"], r["input"], r["session_id"]) for r in rows] == [
        ("positive", "I love it", "s3")
    ]
    assert list(rows[0]) == [
        "id",
        "created_at",
        "label",
        "input",
        "trace_id",
        "session_id",
        "model",
    ]
    assert summary.skipped["no input"] == 1
    await export(collector, "labels", tmp_path / "labels.jsonl")
    [row] = _lines(tmp_path / "labels.jsonl")
    assert (row["label"], row["input"]) == ("positive", "I love it")


@pytest.mark.parametrize(
    ("kind", "flavor", "columns"),
    [
        ("sft", "openai", ["messages"]),
        ("dpo", "openai", ["input", "preferred_output", "non_preferred_output"]),
        ("sft", "trl", ["prompt", "completion"]),
        ("dpo", "trl", ["prompt", "chosen", "rejected"]),
        ("kto", "trl", ["prompt", "completion", "label"]),
        ("labels", None, ["id", "created_at", "label", "input", "trace_id", "session_id", "model"]),
        ("raw", None, ["id", "feedback_type", "value", "context", "metadata", "created_at"]),
    ],
)
async def test_every_kind_writes_parquet(
    tmp_path: Path, kind: Any, flavor: Any, columns: list[str]
) -> None:
    """Parquet holds the same rows as JSON Lines (JSON text for free-form raw fields)."""
    collector = await training_session()
    jsonl = tmp_path / "rows.jsonl"
    parquet = tmp_path / "rows.parquet"
    await export(collector, kind, jsonl, flavor=flavor)
    summary = await export(collector, kind, parquet, flavor=flavor)
    table = pq.read_table(parquet)
    assert table.column_names == columns
    assert table.num_rows == summary.written == len(_lines(jsonl))
    if kind in ("sft", "dpo", "kto"):
        assert _unordered(table.to_pylist()) == _unordered(_lines(jsonl))
    if kind == "raw":
        first = table.to_pylist()[0]
        assert orjson.loads(first["context"]) == _lines(jsonl)[0]["context"]


async def test_raw_rows_are_the_items(tmp_path: Path) -> None:
    """The raw kind writes every item as FeedbackItem.to_dict(), newest first."""
    collector = await training_session()
    summary = await export(collector.store, "raw", tmp_path / "raw.jsonl")
    rows = _lines(tmp_path / "raw.jsonl")
    items = [i async for i in collector.store.scan()]  # type: ignore[attr-defined]
    assert rows == [i.to_dict() for i in items]
    assert [FeedbackItem.from_dict(r) for r in rows] == items
    assert (summary.written, summary.skipped) == (11, {})


async def test_filters_streams_and_stdout(tmp_path: Path) -> None:
    """where= narrows the export; a binary stream receives the same bytes as a file."""
    collector = await training_session()
    stream = io.BytesIO()
    summary = await export(
        collector, "raw", stream, where=FeedbackFilter(session_id="s2"), file_format="jsonl"
    )
    rows = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert summary.written == len(rows) == 3
    assert {r["context"]["session_id"] for r in rows} == {"s2"}
    assert summary.path is None
    chunks = [
        c
        async for c in export_chunks(
            collector.store, ExportOptions("raw", where=FeedbackFilter(session_id="s2"))
        )
    ]
    assert b"".join(chunks) == stream.getvalue()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "csv"}, "kind"),
        ({"kind": "kto", "flavor": "openai"}, "flavor"),
        ({"kind": "sft", "flavor": "hf"}, "flavor"),
        ({"kind": "sft", "style": "chat"}, "style"),
        ({"kind": "kto", "min_rating": 3, "max_rating": 3}, "max_rating"),
        ({"kind": "kto", "min_rating": "4"}, "min_rating"),
        ({"kind": "sft", "file_format": "csv"}, "file_format"),
        ({"kind": "sft", "file_format": "xml"}, "file_format"),
        ({"kind": "sft", "where": {"session_id": "s"}}, "where"),
        ({"kind": "sft", "to": 42}, "to"),
        ({"kind": "sft", "min_rating": float("nan")}, "min_rating"),
        ({"kind": "kto", "max_rating": float("-inf")}, "max_rating"),
        ({"kind": "raw", "to": "."}, "to"),
        ({"kind": "raw", "to": ".."}, "to"),
        ({"kind": "raw", "to": ""}, "to"),
    ],
)
async def test_bad_options_name_the_field_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], field: str
) -> None:
    """Every invalid option is a FeedbackValidationError naming it; no file is created."""
    monkeypatch.chdir(tmp_path)
    collector = await training_session()
    target = kwargs.pop("to", tmp_path / "out.jsonl")
    kind = kwargs.pop("kind")
    with pytest.raises(FeedbackValidationError) as info:
        await export(collector, kind, target, **kwargs)
    assert info.value.field == field
    assert list(tmp_path.iterdir()) == []


async def test_an_existing_directory_as_the_target_is_named(tmp_path: Path) -> None:
    """Exporting onto a directory is an error naming ``to``; the directory is untouched."""
    (tmp_path / "out").mkdir()
    with pytest.raises(FeedbackValidationError) as info:
        await export(await training_session(), "raw", tmp_path / "out")
    assert info.value.field == "to"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert list((tmp_path / "out").iterdir()) == []


async def test_a_failing_store_leaves_no_half_written_file(tmp_path: Path) -> None:
    """An export that fails midway removes its partial file and keeps an older export intact."""
    store = MemoryFeedbackStore()
    await store.save_many([FeedbackItem(FeedbackType.RATING, 5) for _ in range(5000)])
    out = tmp_path / "raw.jsonl"
    out.write_text("previous export\n")

    class Failing:
        def scan(self, where: Any = None) -> AsyncIterator[FeedbackItem]:
            async def items() -> AsyncIterator[FeedbackItem]:
                async for n, item in _numbered(store.scan(where)):
                    if n == 4500:
                        raise FeedbackStorageError("the database went away")
                    yield item

            return items()

    with pytest.raises(FeedbackStorageError, match="went away"):
        await export(Failing(), "raw", out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["raw.jsonl"]
    with pytest.raises(FeedbackStorageError, match="cannot stream"):
        await export(object(), "raw", out)


async def _numbered(items: AsyncIterator[FeedbackItem]) -> AsyncIterator[tuple[int, FeedbackItem]]:
    n = 0
    async for item in items:
        yield n, item
        n += 1


def _tricky_items() -> list[FeedbackItem]:
    whole = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    return [
        FeedbackItem(
            FeedbackType.TEXT,
            'back\\slash "quoted"\nnew line\ttab \x01 /slash héllo ✓ 😀',
            context={"session_id": "s", "captured": {"input": "a\\b", "output": "ü"}},
            metadata={"n": 1e16, "z": -0.0, "f": 0.1, "i": 3, "deep": [{"x": None}]},
            id='id "with" \\ quotes ✓',
            created_at=whole,
        ),
        FeedbackItem(
            FeedbackType.RATING,
            4.5,
            context={"session_id": "s"},
            created_at=whole.replace(microsecond=5),
        ),
        FeedbackItem(
            FeedbackType.CORRECTION,
            {"original": "", "corrected": "b"},
            created_at=datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        ),
        FeedbackItem(
            FeedbackType.LABEL, {"label": "l", "input": {"k": [1, 2.5]}}, created_at=whole
        ),
    ]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_database_built_raw_lines_equal_the_items(tmp_path: Path, backend: str) -> None:
    """The raw lines SQLite and PostgreSQL build are the bytes of each item's to_dict()."""
    from tests.stores import backend_postgresql, backend_sqlite  # noqa: PLC0415

    module = backend_sqlite if backend == "sqlite" else backend_postgresql
    async with module.open_store(tmp_path) as store:
        items = _tricky_items()
        assert (await store.save_many(items)).is_ok()
        out = tmp_path / "raw.jsonl"
        summary = await export(store, "raw", out)
        expected = b"".join([orjson.dumps(i.to_dict()) + b"\n" async for i in store.scan()])
        assert out.read_bytes() == expected
        assert summary.written == summary.scanned == 4
        assert [FeedbackItem.from_dict(r) for r in _lines(out)] == [i async for i in store.scan()]
        narrowed = io.BytesIO()
        await export(store, "raw", narrowed, where=FeedbackFilter(session_id="s"))
        assert len(narrowed.getvalue().splitlines()) == 2


@pytest.mark.redis
async def test_raw_export_through_a_cache_over_memory_uses_the_generic_path() -> None:
    """A cached in-memory store behind the read-your-writes view exports raw items too."""
    from ai_feedback.stores.cached import CachedFeedbackStore  # noqa: PLC0415
    from ai_feedback.stores.consistent import ReadYourWritesStore  # noqa: PLC0415
    from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix  # noqa: PLC0415

    prefix = unique_prefix()
    flushed: list[bool] = []

    async def flush() -> None:
        flushed.append(True)

    try:
        async with CachedFeedbackStore(MemoryFeedbackStore(), REDIS_URL, prefix=prefix) as cached:
            await cached.save_many(_tricky_items())
            stream = io.BytesIO()
            summary = await export(ReadYourWritesStore(cached, flush), "raw", stream)
            assert summary.written == 4
            assert flushed
    finally:
        await delete_keys(prefix)


@pytest.mark.postgres
async def test_a_stalled_postgres_export_gives_its_connection_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that stops reading ends the COPY after the stall limit; the pool recovers."""
    from ai_feedback.stores import postgres  # noqa: PLC0415
    from tests.stores import backend_postgresql  # noqa: PLC0415

    monkeypatch.setattr(postgres, "_COPY_STALL_S", 0.2)
    monkeypatch.setattr(postgres, "_COPY_CHUNKS", 1)
    async with backend_postgresql.open_store(tmp_path) as store:
        await store.save_many([FeedbackItem(FeedbackType.TEXT, "x" * 200) for _ in range(20_000)])
        lines = store.raw_lines()
        await anext(lines)
        await asyncio.sleep(1.0)  # the reader stalls; the COPY gives up and releases
        pool = store._pool
        assert pool is not None
        assert pool.get_idle_size() == pool.get_size()  # the COPY's connection is back
        assert len(await store.query(limit=5)) == 5
        with pytest.raises(FeedbackStorageError, match="export feedback"):
            async for _ in lines:
                pass


async def test_dpo_compares_ratings_of_one_scale_and_one_name_only(tmp_path: Path) -> None:
    """A thumbs up is not worse than two stars; different score names are not compared."""
    store = MemoryFeedbackStore()
    context = {"input": "Summarize", "output": ""}

    def rated(value: float, output: str, **metadata: str) -> FeedbackItem:
        return FeedbackItem(
            FeedbackType.RATING, value, {**context, "output": output}, dict(metadata)
        )

    await store.save_many(
        [
            rated(1, "thumbs-up answer", scale="thumbs"),
            rated(2, "two-star answer"),
            rated(0.9, "accurate answer", name="accuracy"),
            rated(4, "pleasant answer", name="tone"),
            rated(5, "five-star answer"),
        ]
    )
    out = tmp_path / "dpo.jsonl"
    summary = await export(store, "dpo", out, flavor="trl", style="standard")
    assert [(r["chosen"], r["rejected"]) for r in _lines(out)] == [
        ("five-star answer", "two-star answer")
    ]
    assert summary.skipped == {"no differently rated output for the same prompt": 3}


async def test_chat_api_messages_with_text_parts_or_tool_calls(tmp_path: Path) -> None:
    """Text parts are joined; a conversation with tool calls or images is skipped, named."""
    parts = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Capital of "}, {"type": "text", "text": "Peru?"}],
        },
    ]
    tool_turn = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "sunny"},
    ]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    answer = [{"role": "assistant", "content": [{"type": "text", "text": "Lima"}]}]
    store = MemoryFeedbackStore()
    await store.save_many(
        [
            FeedbackItem(FeedbackType.RATING, 5, {"input": parts, "output": answer}),
            FeedbackItem(FeedbackType.RATING, 5, {"input": tool_turn, "output": "Sunny."}),
            FeedbackItem(FeedbackType.RATING, 5, {"input": image, "output": "A cat."}),
        ]
    )
    out = tmp_path / "sft.jsonl"
    summary = await export(store, "sft", out)
    assert _lines(out) == [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                _user("Capital of Peru?"),
                _assistant("Lima"),
            ]
        }
    ]
    assert summary.skipped == {"a message that is not text (tool calls, images)": 2}
