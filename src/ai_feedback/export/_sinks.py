"""
Encoders from rows to bytes: JSON Lines, CSV and Parquet, a chunk at a time.

Each encoder takes rows in batches and returns the bytes to write next, so an export
streams to a file, stdout or an HTTP response in constant memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Literal, Protocol, TypeAlias

import orjson

from ai_feedback.exceptions import FeedbackConfigurationError, FeedbackValidationError
from ai_feedback.export._formats import ExportOptions

__all__ = ["FILE_FORMATS", "Encoder", "FileFormat", "encoder", "file_format_of"]

FileFormat: TypeAlias = Literal["jsonl", "csv", "parquet"]
"""How rows are written: JSON Lines, CSV (labels only) or Parquet."""

FILE_FORMATS: tuple[FileFormat, ...] = ("jsonl", "csv", "parquet")
_SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_LABEL_COLUMNS = ("id", "created_at", "label", "input", "trace_id", "session_id", "model")
_RAW_JSON_COLUMNS = ("value", "context", "metadata")


class Encoder(Protocol):
    """
    **Protocol:** turns batches of rows into the bytes of one file.
    """

    media_type: str

    def encode(self, rows: Sequence[dict[str, Any]]) -> bytes:
        """
        Return the bytes for ``rows`` (and any header the file needs first).
        """
        ...

    def close(self) -> bytes:
        """
        Return the bytes that end the file.
        """
        ...


def file_format_of(name: str, given: str | None) -> FileFormat:
    """
    Return ``given`` if set, else the format the file name's suffix means (JSONL by default).

    Raises:
        FeedbackValidationError: ``given`` is not a known format.
    """
    if given is not None:
        if given not in FILE_FORMATS:
            msg = f"must be one of {', '.join(FILE_FORMATS)}"
            raise FeedbackValidationError("file_format", msg, given)
        return given
    lowered = name.lower()
    for suffix, fmt in _SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    return "jsonl"


def encoder(options: ExportOptions, file_format: FileFormat) -> Encoder:
    """
    Return a fresh encoder writing ``options.kind`` rows as ``file_format``.

    Raises:
        FeedbackValidationError: CSV for anything but labels.
        FeedbackConfigurationError: Parquet without pyarrow installed.
    """
    if file_format == "jsonl":
        return _JSONLines()
    if file_format == "csv":
        if options.kind != "labels":
            msg = "csv holds flat rows: only labels export to csv (use jsonl or parquet)"
            raise FeedbackValidationError("file_format", msg, file_format)
        return _CSV()
    return _Parquet(options)


class _JSONLines:
    media_type = "application/x-ndjson"

    def encode(self, rows: Sequence[dict[str, Any]]) -> bytes:
        dumps = orjson.dumps
        return b"".join([dumps(row) + b"\n" for row in rows])

    def close(self) -> bytes:
        return b""


class _CSV:
    media_type = "text/csv"

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.DictWriter(self._buffer, _LABEL_COLUMNS, lineterminator="\n")
        self._writer.writeheader()

    def encode(self, rows: Sequence[dict[str, Any]]) -> bytes:
        for row in rows:
            self._writer.writerow({**row, "input": _text(row["input"])})
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def close(self) -> bytes:
        return self.encode([])


class _Parquet:
    media_type = "application/vnd.apache.parquet"

    def __init__(self, options: ExportOptions) -> None:
        try:
            import pyarrow as pa  # noqa: PLC0415 - an optional extra
            import pyarrow.parquet as pq  # noqa: PLC0415
        except ModuleNotFoundError as exc:
            msg = "needs pyarrow for parquet: pip install 'ai-feedback[parquet]'"
            raise FeedbackConfigurationError("file_format", msg) from exc
        self._pa = pa
        self._kind = options.kind
        self._schema = _schema(pa, options)
        self._sink = io.BytesIO()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def encode(self, rows: Sequence[dict[str, Any]]) -> bytes:
        if not rows:
            return b""
        if self._kind == "raw":
            rows = [_json_columns(row, _RAW_JSON_COLUMNS) for row in rows]
        elif self._kind == "labels":
            rows = [{**row, "input": _text(row["input"])} for row in rows]
        table = self._pa.Table.from_pylist(list(rows), schema=self._schema)
        self._writer.write_table(table)
        return self._drain()

    def close(self) -> bytes:
        self._writer.close()
        return self._drain()

    def _drain(self) -> bytes:
        data = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return data


def _schema(pa: Any, options: ExportOptions) -> Any:  # noqa: ANN401 - pyarrow objects
    string = pa.string()
    messages = pa.list_(pa.struct([("role", string), ("content", string)]))
    if options.kind == "raw":
        names = ("id", "feedback_type", "value", "context", "metadata", "created_at")
        return pa.schema([(name, string) for name in names])
    if options.kind == "labels":
        return pa.schema([(name, string) for name in _LABEL_COLUMNS])
    if options.openai:
        if options.kind == "sft":
            return pa.schema([("messages", messages)])
        return pa.schema(
            [
                ("input", pa.struct([("messages", messages)])),
                ("preferred_output", messages),
                ("non_preferred_output", messages),
            ]
        )
    cell = string if options.style == "standard" else messages
    answers = {"sft": ("completion",), "dpo": ("chosen", "rejected"), "kto": ("completion",)}
    fields = [("prompt", cell), *((name, cell) for name in answers[options.kind])]
    if options.kind == "kto":
        fields.append(("label", pa.bool_()))
    return pa.schema(fields)


def _json_columns(row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    return {**row, **{name: orjson.dumps(row[name]).decode() for name in columns}}


def _text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
