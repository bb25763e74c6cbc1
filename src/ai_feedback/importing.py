"""
Import feedback from files: raw exports, Langfuse, LangSmith and MLflow records.

``await import_file(store_or_collector, "feedback.jsonl")`` reads JSON Lines (or one JSON
document: an array, a Langfuse API page ``{"data": [...]}``, an MLflow search page
``{"traces": [...]}`` or a single object), recognizes each record by its shape, and
stores the valid ones in batches. A record that is not valid JSON, has an unknown shape,
breaks a rule, or conflicts with a stored item is reported with its line number and
skipped; it is never partly stored. An MLflow trace is a record holding several
assessments: each is imported or skipped on its own, and a skipped one is reported with
the trace's line and the assessment's position (``info.assessments[1].feedback.value``).
Stores are idempotent on ids, so importing a file twice stores each item once, and a
``raw`` export imports back to equal items.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import orjson

from ai_feedback._models import FeedbackItem
from ai_feedback._validation import Limits, check_id, json_loads
from ai_feedback.exceptions import (
    FeedbackConflictError,
    FeedbackStorageError,
    FeedbackValidationError,
)
from ai_feedback.peers import (
    langfuse_error,
    langfuse_score_payload,
    langsmith_error,
    langsmith_feedback_payload,
    mlflow_assessment_payload,
    mlflow_error,
    with_content_id,
)
from ai_feedback.stores._common import same_item

__all__ = ["SOURCES", "ImportSummary", "Problem", "Source", "import_file"]

Source: TypeAlias = Literal["auto", "raw", "langfuse", "langsmith", "mlflow"]
"""Which shape the records have; ``auto`` recognizes each record by its keys."""

SOURCES: tuple[Source, ...] = ("auto", "raw", "langfuse", "langsmith", "mlflow")
# The lists a JSON document may hold its records in: Langfuse's page, MLflow's search page.
_PAGE_KEYS = ("data", "traces")
_KEPT_PROBLEMS = 100
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """
    A record that was not imported.

    Args:
        line: Its line number (its position, from 1, in a JSON array).
        field: The field at fault (``"record"`` when the record cannot be read at all).
        message: What is wrong.
    """

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class ImportSummary:
    """
    What an import read, stored and skipped.

    Args:
        path: The file read.
        read: Records read (an MLflow trace is one record, whatever it holds).
        imported: Items stored (or already stored under the same id, unchanged): one
            per record, one per assessment of an MLflow trace.
        invalid: Records (or assessments of a trace) skipped.
        problems: The first 100 skipped records and why.
        by_source: Items stored, by shape (``raw``, ``langfuse``, ``langsmith``,
            ``mlflow``).
        seconds: How long it took.
    """

    path: str
    read: int = 0
    imported: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    by_source: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict of the summary.
        """
        return {
            "path": self.path,
            "read": self.read,
            "imported": self.imported,
            "invalid": self.invalid,
            "problems": [str(p) for p in self.problems],
            "by_source": dict(self.by_source),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    source: str
    item: FeedbackItem
    raw_payload: Any


async def import_file(
    target: object,
    path: str | os.PathLike[str],
    *,
    source: Source = "auto",
    owner_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """
    Store the records of the file at ``path`` in ``target``.

    Args:
        target: A store with ``save_many``, or a `FeedbackCollector` (its store is used,
            after the items it accepted are written). Imported items go straight to the
            store: the pipeline's processors do not run on them.
        path: A JSON Lines file, or one JSON document: an array, a Langfuse API page,
            an MLflow search page or a single record.
        source: ``raw`` (``ai-feedback export raw``), ``langfuse`` (scores),
            ``langsmith`` (feedback), ``mlflow`` (traces or assessments), or ``auto``
            to recognize each record.
        owner_id: Every item's ``context.owner_id`` (the service's project, so that its
            keys read, export and delete them); a record naming another owner is
            refused. None keeps the records' own.
        progress: Called with (records read, records stored) after each batch.

    Raises:
        FeedbackValidationError: ``source`` is unknown or ``target`` cannot store items.
        FeedbackStorageError: The store failed (the batches before were stored).
        OSError: The file cannot be read.
    """
    if source not in SOURCES:
        raise FeedbackValidationError("source", f"must be one of {', '.join(SOURCES)}", source)
    if owner_id is not None:
        check_id("owner_id", owner_id)
    started = time.perf_counter()
    store, build = await _target(target, owner_id)
    summary = ImportSummary(os.fspath(path))
    batch: list[_Record] = []
    for line, record in _records(Path(path)):
        summary.read += 1
        for parsed in _parse(line, record, source, build):
            if isinstance(parsed, Problem):
                _skip(summary, parsed.line, parsed.field, parsed.message)
            else:
                batch.append(parsed)
        if len(batch) >= _BATCH:
            await _save(store, batch, summary)
            if progress is not None:
                progress(summary.read, summary.imported)
    await _save(store, batch, summary)
    if progress is not None:
        progress(summary.read, summary.imported)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass(frozen=True, slots=True)
class _Builder:
    """
    How a record becomes a checked item, as the target's collector would build it.
    """

    build: Callable[[Mapping[str, Any]], FeedbackItem]
    limits: Limits
    owner_id: str | None = None

    def payload(self, payload: Mapping[str, Any]) -> FeedbackItem:
        """
        Return the item a submitted ``payload`` becomes, owned by the import's owner.
        """
        return self.build(_owned(payload, self.owner_id))

    def raw(self, record: Mapping[str, Any]) -> FeedbackItem:
        """
        Return a raw export line's item, held to the limits a submission meets.
        """
        item = FeedbackItem.from_dict(_owned(record, self.owner_id))
        item.check_limits(self.limits)
        return item


def _owned(record: Mapping[str, Any], owner_id: str | None) -> Mapping[str, Any]:
    """
    Return ``record`` with ``context.owner_id`` set to ``owner_id`` (when given).

    Raises:
        FeedbackValidationError: The record names another owner.
    """
    if owner_id is None:
        return record
    context = record.get("context")
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        return record  # the builder names the bad context
    if context.get("owner_id", owner_id) != owner_id:
        msg = f"must be {owner_id!r}, the owner this import writes for"
        raise FeedbackValidationError("context.owner_id", msg, context.get("owner_id"))
    return {**record, "context": {**context, "owner_id": owner_id}}


async def _target(target: object, owner_id: str | None) -> tuple[Any, _Builder]:
    """
    The store to write to, and the builder of its items.
    """
    from ai_feedback.collector import FeedbackCollector  # noqa: PLC0415 - import cycle
    from ai_feedback.config import FeedbackConfig  # noqa: PLC0415

    if isinstance(target, FeedbackCollector):
        await target.flush()
        collector = target
    elif hasattr(target, "save_many"):
        collector = FeedbackCollector(target, FeedbackConfig(async_processing=False))  # type: ignore[arg-type]
    else:
        raise FeedbackValidationError("target", "must be a store with save_many or a collector")
    return collector.store, _Builder(collector.build_item, collector.config.limits, owner_id)


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """
    Yield (line number, decoded record); a record that is not JSON is a ValueError value.
    """
    with path.open("rb") as file:
        start = 3 if file.read(3) == _BOM else 0  # a UTF-8 byte order mark is not data
        file.seek(start)
        head = file.read(1 << 16).lstrip()
        file.seek(start)
        if head.startswith(b"[") or (head.startswith(b"{") and not _parses(file.readline())):
            file.seek(start)  # one JSON document (an array, or a page written over many lines)
            data = file.read()
            # ...unless it does not parse and its lines do: JSON Lines whose first line is
            # damaged (or whose lines are arrays), reported line by line below.
            if _parses(data) or not _lines_parse(data):
                yield from _document(data)
                return
        file.seek(start)
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json_loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, exc
                continue
            if number == 1 and _page(record) is not None:
                yield from _document(line)  # a Langfuse or MLflow page on one line
                continue
            yield number, record


_BOM = b"\xef\xbb\xbf"


def _lines_parse(data: bytes) -> bool:
    """
    Whether a line after the first (of the first thousand) is a JSON object or array alone.
    """
    for line in data.splitlines()[1:1000]:
        try:
            if isinstance(json_loads(line), dict | list):
                return True
        except orjson.JSONDecodeError:
            continue
    return False


def _parses(line: bytes) -> bool:
    try:
        json_loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _document(data: bytes) -> Iterator[tuple[int, Any]]:
    try:
        doc = json_loads(data)
    except orjson.JSONDecodeError as exc:
        yield 1, exc
        return
    if isinstance(doc, list):
        yield from enumerate(doc, start=1)
    elif isinstance(doc, dict):
        records = _page(doc)
        yield from enumerate([doc] if records is None else records, start=1)
    else:
        yield 1, ValueError("a JSON document must be an array or an object")


def _page(doc: object) -> list[Any] | None:
    """
    The records of a page (``{"data": [...]}``, ``{"traces": [...]}``), else None.
    """
    if isinstance(doc, dict):
        for key in _PAGE_KEYS:
            if isinstance(doc.get(key), list):
                records: list[Any] = doc[key]
                return records
    return None


def _parse(line: int, record: object, source: Source, build: _Builder) -> list[_Record | Problem]:
    """
    Return the items of one record, or the problems that keep them out.
    """
    try:
        return _parsed(line, record, source, build)
    except FeedbackValidationError as exc:
        return [Problem(line, exc.field, str(exc))]


def _parsed(line: int, record: object, source: Source, build: _Builder) -> list[_Record | Problem]:
    if isinstance(record, Exception):
        raise FeedbackValidationError("record", f"is not valid JSON ({record})")
    if not isinstance(record, dict):
        raise FeedbackValidationError("record", "must be a JSON object", record)
    shape = source if source != "auto" else _shape(record)
    if shape == "mlflow":
        return list(_mlflow(line, record, build))
    # A record without an id but with a time gets an id derived from its content, so
    # that importing the file again stores it once.
    if shape == "raw":
        return [_Record(line, shape, build.raw(with_content_id(dict(record))), None)]
    if shape == "langfuse":
        if record.get("dataType") == "CATEGORICAL" and record.get("stringValue") is not None:
            record = {**record, "value": record["stringValue"]}  # exports put it there
        payload = with_content_id(langfuse_score_payload(record))
        try:
            return [_Record(line, shape, build.payload(payload), record)]
        except FeedbackValidationError as exc:
            raise langfuse_error(exc) from None
    payload = with_content_id(langsmith_feedback_payload(record))
    try:
        return [_Record(line, shape, build.payload(payload), record)]
    except FeedbackValidationError as exc:
        raise langsmith_error(exc, record) from None


def _shape(record: Mapping[str, Any]) -> str:
    if "feedback_type" in record:
        return "raw"
    if "dataType" in record or "traceId" in record:
        return "langfuse"
    if "run_id" in record or "key" in record:
        return "langsmith"
    if not _MLFLOW_KEYS.isdisjoint(record):
        return "mlflow"
    msg = (
        "is not a raw item, a Langfuse score, a LangSmith feedback or an MLflow trace or "
        "assessment (no known keys)"
    )
    raise FeedbackValidationError("record", msg)


# A trace (Trace.to_json), a trace's info (MLflow's REST API), an assessment.
_MLFLOW_KEYS = frozenset(
    ("info", "trace_info", "assessments", "assessment_name", "feedback", "expectation")
)


def _mlflow(line: int, record: Mapping[str, Any], build: _Builder) -> Iterator[_Record | Problem]:
    """
    Yield an item (or a problem) for each assessment of an MLflow trace or assessment.
    """
    trace, where = record, ""
    for key in ("info", "trace_info"):
        if key in record:
            trace, where = record[key], f"{key}."
            if not isinstance(trace, Mapping):
                raise FeedbackValidationError(key, "must be an object", trace)
            break
    trace_id = trace.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        raise FeedbackValidationError(f"{where}trace_id", "must be a non-empty string", trace_id)
    assessments = trace.get("assessments", [] if where else None)
    if assessments is None:  # one assessment on its own
        found: list[tuple[str, object]] = [("", trace)]
    elif isinstance(assessments, list):  # a trace (MLflow leaves out an empty list)
        found = [(f"{where}assessments[{i}]", a) for i, a in enumerate(assessments)]
    else:
        msg = "must be a list"
        raise FeedbackValidationError(f"{where}assessments", msg, trace["assessments"])
    for prefix, assessment in found:
        try:
            payload = with_content_id(mlflow_assessment_payload(assessment, trace_id=trace_id))
            item = build.payload(payload)
        except FeedbackValidationError as exc:
            named = mlflow_error(exc, assessment, prefix=prefix, trace_field=f"{where}trace_id")
            yield Problem(line, named.field, str(named))
            continue
        yield _Record(line, "mlflow", item, assessment)


async def _save(store: Any, batch: list[_Record], summary: ImportSummary) -> None:  # noqa: ANN401
    """
    Store ``batch`` (then empty it); records refused as conflicts are reported.

    Of records sharing an id, the first is written; a later one that is the same item
    shares its outcome, a different one is reported. When the store holds another item
    under the id (from an earlier batch or import), the records equal to what it holds
    count as imported and the others are reported.
    """
    unique, rivals = _first_of_each_id(batch)
    refused: set[str] = set()
    while left := [r for r in unique if r.item.id not in refused]:
        items = [r.item for r in left]
        raws = {r.item.id: r.raw_payload for r in left if r.raw_payload is not None}
        if raws and hasattr(store, "get_raw_payload"):
            result = await store.save_many(items, raw_payloads=raws)
        else:
            result = await store.save_many(items)
        if result.is_ok():
            break
        error = result.unwrap_err()
        if not isinstance(error, FeedbackConflictError):
            if isinstance(error, FeedbackStorageError):
                raise error
            msg = f"Could not import into {type(store).__name__}: {error}"
            raise FeedbackStorageError(msg) from error
        refused |= set(error.ids)
    held = {item_id: await store.get(item_id) for item_id in sorted(refused)}
    written = {r.item.id: r.item for r in unique}
    for record in sorted([*unique, *rivals], key=lambda r: r.line):
        item_id = record.item.id
        reference = held.get(item_id) if item_id in refused else written[item_id]
        if reference is not None and same_item(reference, record.item):
            _stored(summary, record)
        elif item_id in refused:
            msg = f"A different item is already stored under id {item_id!r}."
            _skip(summary, record.line, "id", msg)
        else:
            msg = f"A different item has the id {item_id!r} earlier in this import."
            _skip(summary, record.line, "id", msg)
    batch.clear()


def _first_of_each_id(batch: list[_Record]) -> tuple[list[_Record], list[_Record]]:
    """
    Split ``batch`` into the first record of each id and the later records of an id.
    """
    first: set[str] = set()
    unique: list[_Record] = []
    later: list[_Record] = []
    for record in batch:
        if record.item.id in first:
            later.append(record)
        else:
            first.add(record.item.id)
            unique.append(record)
    return unique, later


def _stored(summary: ImportSummary, record: _Record) -> None:
    summary.imported += 1
    summary.by_source[record.source] = summary.by_source.get(record.source, 0) + 1


def _skip(summary: ImportSummary, line: int, field: str, message: str) -> None:
    summary.invalid += 1
    if len(summary.problems) < _KEPT_PROBLEMS:
        summary.problems.append(Problem(line, field, message))
