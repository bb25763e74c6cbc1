"""
Export feedback as training data (SFT, DPO, KTO), labels or raw items.

``await export(store, "sft", "train.jsonl")`` streams the store's items through one
format into a file (JSON Lines, CSV or Parquet) in constant memory and returns an
`ExportSummary` with what was written and what was skipped and why. `export_chunks`
yields the same bytes for a stream (stdout, an HTTP response).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ai_feedback._models import FeedbackFilter, FeedbackItem
from ai_feedback.exceptions import FeedbackStorageError, FeedbackValidationError
from ai_feedback.export._formats import (
    FLAVORS,
    KINDS,
    STYLES,
    ExportOptions,
    Flavor,
    Kind,
    RowBuilder,
    Style,
)
from ai_feedback.export._sinks import FILE_FORMATS, Encoder, FileFormat, encoder, file_format_of

__all__ = [
    "FILE_FORMATS",
    "FLAVORS",
    "KINDS",
    "STYLES",
    "ExportOptions",
    "ExportSummary",
    "FileFormat",
    "Flavor",
    "Kind",
    "Progress",
    "Style",
    "export",
    "export_chunks",
]

Progress = Callable[[int, int], None]
"""Called after each batch with the items read and the rows written so far."""

_BATCH = 2000


@dataclass(slots=True)
class ExportSummary:
    """
    What an export read, wrote and left out.

    Args:
        kind: The format exported.
        file_format: ``jsonl``, ``csv`` or ``parquet``.
        scanned: Items read from the store.
        written: Rows written.
        skipped: Items left out, by reason (``"no prompt captured"``, ...).
        path: The file written, or None for a stream.
        seconds: How long it took.
    """

    kind: str
    file_format: str
    scanned: int = 0
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    path: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """
        Return a JSON-ready dict of the summary.
        """
        return {
            "kind": self.kind,
            "file_format": self.file_format,
            "scanned": self.scanned,
            "written": self.written,
            "skipped": dict(self.skipped),
            "path": self.path,
            "seconds": round(self.seconds, 3),
        }


async def export_chunks(
    source: object,
    options: ExportOptions,
    file_format: FileFormat = "jsonl",
    *,
    summary: ExportSummary | None = None,
    progress: Progress | None = None,
) -> AsyncIterator[bytes]:
    """
    Yield the bytes of the export, a batch of rows at a time.

    ``source`` is a store with ``scan`` or a `FeedbackCollector` (its accepted items are
    written first). ``summary``, when given, is filled in as the export goes.

    Raises:
        FeedbackValidationError: ``file_format`` does not fit the kind.
        FeedbackStorageError: ``source`` cannot stream its items.
    """
    started = time.perf_counter()
    if summary is None:
        summary = ExportSummary(options.kind, file_format)
    sink = encoder(options, file_format)
    store = await _store(source)
    if options.kind == "raw" and file_format == "jsonl":
        lines = getattr(store, "raw_lines", None)
        chunks = None if lines is None else lines(options.where)
        if chunks is not None:  # the database builds the lines (PostgreSQL's COPY)
            async for chunk in chunks:
                count = chunk.count(b"\n")
                summary.scanned += count
                summary.written += count
                if progress is not None:
                    progress(summary.scanned, summary.written)
                yield chunk
            summary.seconds = time.perf_counter() - started
            return
    items = _scan(store, options.where)
    builder = RowBuilder(options)
    rows: list[dict[str, Any]] = []
    scanned = 0
    async for item in items:
        scanned += 1
        rows.extend(builder.rows(item))
        if scanned % _BATCH == 0:
            chunk = _flush(sink, rows, summary, scanned, progress)
            if chunk:
                yield chunk
    rows.extend(builder.finish())
    chunk = _flush(sink, rows, summary, scanned, progress) + sink.close()
    summary.skipped = dict(sorted(builder.skipped.items()))
    summary.seconds = time.perf_counter() - started
    if chunk:
        yield chunk


async def export(
    source: object,
    kind: Kind,
    to: str | os.PathLike[str] | IO[bytes],
    *,
    file_format: FileFormat | None = None,
    flavor: Flavor | None = None,
    style: Style = "conversational",
    min_rating: float = 4,
    max_rating: float = 2,
    where: FeedbackFilter | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """
    Export ``source``'s items as ``kind`` into the file ``to`` (or a binary stream).

    A file is written under a temporary name and renamed when complete, so a failed
    export never leaves a half-written file behind.

    Args:
        source: A store with ``scan`` (every built-in store) or a `FeedbackCollector`.
        kind: ``sft``, ``dpo``, ``kto``, ``labels`` or ``raw``.
        to: A path, or a binary file object such as ``sys.stdout.buffer``.
        file_format: ``jsonl``, ``csv`` or ``parquet``; by default from the suffix of
            ``to`` (JSON Lines otherwise).
        flavor: ``openai`` or ``trl`` field names (see `ExportOptions`).
        style: TRL ``conversational`` (messages) or ``standard`` (strings) rows.
        min_rating: Ratings at or above it are good.
        max_rating: Ratings at or below it are bad.
        where: Only the items this filter matches.
        progress: Called with (items read, rows written) after each batch.

    Returns:
        What was written and what was skipped, by reason.

    Raises:
        FeedbackValidationError: An option is invalid.
        FeedbackStorageError: The store failed, or ``source`` cannot stream items.
        OSError: The file cannot be written.
    """
    options = ExportOptions(kind, flavor, style, min_rating, max_rating, where)
    is_path = isinstance(to, str | os.PathLike)
    if not is_path and not hasattr(to, "write"):
        raise FeedbackValidationError("to", "must be a path or a binary file object", to)
    name = os.fspath(to) if is_path else str(getattr(to, "name", ""))  # type: ignore[arg-type]
    # A stat before the first row, so that nothing is exported onto a directory.
    if is_path and (Path(name).name in ("", "..") or Path(name).is_dir()):  # noqa: ASYNC240
        raise FeedbackValidationError("to", "must name a file, not a directory", name)
    fmt = file_format_of(name, file_format)
    summary = ExportSummary(kind, fmt, path=name if is_path else None)
    chunks = export_chunks(source, options, fmt, summary=summary, progress=progress)
    if not is_path:
        async for chunk in chunks:
            to.write(chunk)  # type: ignore[union-attr]
        return summary
    target = Path(name)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as out:
            async for chunk in chunks:
                out.write(chunk)
        try:
            partial.replace(target)
        except IsADirectoryError:
            msg = "must name a file, not a directory"
            raise FeedbackValidationError("to", msg, name) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return summary


def _flush(
    sink: Encoder,
    rows: list[dict[str, Any]],
    summary: ExportSummary,
    scanned: int,
    progress: Progress | None,
) -> bytes:
    chunk = sink.encode(rows)
    summary.scanned = scanned
    summary.written += len(rows)
    rows.clear()
    if progress is not None:
        progress(summary.scanned, summary.written)
    return chunk


async def _store(source: object) -> object:
    store = getattr(source, "store", None)
    flush = getattr(source, "flush", None)
    if store is not None and flush is not None:  # a FeedbackCollector
        await flush()
        return store
    return source


def _scan(store: object, where: FeedbackFilter | None) -> AsyncIterator[FeedbackItem]:
    scan = getattr(store, "scan", None)
    if scan is None:
        msg = f"{type(store).__name__} cannot stream its items: give a store with scan()"
        raise FeedbackStorageError(msg)
    items: AsyncIterator[FeedbackItem] = scan(where)
    return items
