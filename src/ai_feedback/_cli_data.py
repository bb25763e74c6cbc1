"""
The data commands of ``ai-feedback``: stats, export, import, delete, migrate, demo, config.

They open the configured store directly (no background writer, no spool). When the
configuration does not choose a store, they use the demo's SQLite file
(``./ai_feedback_demo.db``), so ``ai-feedback demo`` followed by ``ai-feedback stats``
shows what the demo recorded; ``--database-url`` picks any other store.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ai_feedback._cli_base import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ConfigOption, run
from ai_feedback._models import FeedbackFilter
from ai_feedback._urls import masked_url
from ai_feedback.app import Application
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig, config_report, ignored_variables
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.module import FeedbackModule, open_store, require_extra
from ai_feedback.stores._sqlite_schema import parse_target

if TYPE_CHECKING:
    from ai_feedback.stores.cached import CachedFeedbackStore
    from ai_feedback.stores.postgres import PostgresFeedbackStore
    from ai_feedback.stores.sqlite import SQLiteFeedbackStore

__all__ = [
    "config_command",
    "delete_command",
    "demo_command",
    "export_command",
    "import_command",
    "migrate_command",
    "stats_command",
]

_DEMO_DATABASE_URL = "sqlite:///./ai_feedback_demo.db"
_QUIET = logging.WARNING
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///file.db or postgresql://... (default: the configuration's store).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _store_config(config_path: Path | None, database_url: str | None) -> FeedbackConfig:
    """
    The configuration with writes in the caller's task (no spool) and the store chosen.
    """
    values: dict[str, Any] = {"async_processing": False, "retention_days": None}
    if database_url is not None:
        kind = "postgresql" if database_url.startswith(("postgres://", "postgresql")) else "sqlite"
        values |= {"store": kind, "database_url": database_url}
    elif "store" not in FeedbackConfig.load(config_path).model_fields_set:
        values |= {"store": "sqlite", "database_url": _DEMO_DATABASE_URL}
    return FeedbackConfig.load(config_path, **values)


@asynccontextmanager
async def _collector(
    config_path: Path | None, database_url: str | None, *, existing: bool = True
) -> AsyncIterator[FeedbackCollector]:
    """
    The collector of the configured store; with ``existing``, an SQLite file must exist.

    Commands that only read or delete would otherwise create an empty database at a
    mistyped path and report nothing found.
    """
    config = _store_config(config_path, database_url)
    if config.store == "memory":
        msg = "is memory, which a command cannot read: set database_url or --database-url"
        raise FeedbackValidationError("store", msg)
    if existing:
        _check_exists(config)
    application = Application(modules=[FeedbackModule.configure(config)], config_path=config_path)
    async with application:
        yield await application.container.resolve(FeedbackCollector)


def _check_exists(config: FeedbackConfig) -> None:
    """
    Refuse an SQLite database URL whose file does not exist.
    """
    url = config.resolved_database_url
    if config.store != "sqlite" or url is None:
        return
    path, _ = parse_target(url)
    if path != ":memory:" and not Path(path).exists():
        msg = f"names no SQLite database: {path} does not exist (check the path)"
        raise FeedbackValidationError("database_url", msg, url)


def _filter(**fields: Any) -> FeedbackFilter | None:  # noqa: ANN401 - filter field values
    try:
        where = FeedbackFilter(**{k: v for k, v in fields.items() if v is not None})
    except FeedbackValidationError as exc:  # built before run(): report it the same way
        option = "--id" if exc.field == "item_id" else "--" + exc.field.replace("_", "-")
        typer.echo(f"error: {exc.renamed(option)}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    return None if where.is_empty() else where


def _progress(label: str) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} [progress.description]{{task.description}}"),
        TextColumn("{task.completed:,.0f} items"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=_stderr,
        transient=True,
    )


def _updater(progress: Progress, task: Any) -> Callable[[int, int], None]:  # noqa: ANN401
    def update(read: int, written: int) -> None:
        elapsed = progress.tasks[0].elapsed or 0.0
        rate = f"{read / elapsed:,.0f} items/s" if elapsed > 0 else ""
        progress.update(task, completed=read, description=f"({written:,} written)", rate=rate)

    return update


def stats_command(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    window_hours: Annotated[float, typer.Option(help="Hours back from now.", min=0.001)] = 24,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    as_json: JsonOption = False,
) -> None:
    """
    Show statistics of the last window: totals, ratings, types and models.
    """
    run(_stats(config, database_url, window_hours, model, provider, as_json), level=_QUIET)


async def _stats(
    config_path: Path | None,
    database_url: str | None,
    window_hours: float,
    model: str | None,
    provider: str | None,
    as_json: bool,
) -> None:
    async with _collector(config_path, database_url) as collector:
        stats = (
            await collector.store.stats(  # type: ignore[attr-defined]
                window_hours=window_hours, model=model, provider=provider
            )
        ).to_dict()
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    console = Console(highlight=False)
    summary = Table(title=f"Feedback, last {window_hours:g} hours", show_header=False)
    average = stats["average_rating"]
    rating = stats["rating"]
    summary.add_row("items", f"{stats['total_count']:,}")
    summary.add_row("average rating", "-" if average is None else f"{average:.3f}")
    for name, count in stats["by_type"].items():
        summary.add_row(f"  {name}", f"{count:,}")
    if rating["count"]:
        summary.add_row("rating min / max", f"{rating['min']:g} / {rating['max']:g}")
        for name, value in rating["percentiles"].items():
            summary.add_row(f"rating {name}", f"{value:g}")
    console.print(summary)
    if stats["by_model"]:
        models = Table("model", "items", "average rating", title="By model")
        for name, row in stats["by_model"].items():
            avg = row["average_rating"]
            models.add_row(name, f"{row['count']:,}", "-" if avg is None else f"{avg:.3f}")
        console.print(models)


def export_command(
    kind: Annotated[str, typer.Argument(help="sft, dpo, kto, labels or raw.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for stdout.")
    ] = "-",
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, csv or parquet (default: from the file name)."),
    ] = None,
    flavor: Annotated[
        str | None, typer.Option(help="openai or trl field names (sft, dpo; kto is trl).")
    ] = None,
    style: Annotated[
        str, typer.Option(help="TRL rows: conversational (messages) or standard (strings).")
    ] = "conversational",
    min_rating: Annotated[float, typer.Option(help="Ratings at or above are good.")] = 4,
    max_rating: Annotated[float, typer.Option(help="Ratings at or below are bad.")] = 2,
    session_id: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    owner_id: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only items created at or after (ISO 8601).")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Only items created before.")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """
    Export feedback as training data (sft, dpo, kto), labels or raw items.

    Writes JSON Lines by default (CSV for labels, Parquet for any, by --format or the
    file name). The summary (written, skipped and why) goes to stderr.
    """
    where = _filter(
        session_id=session_id,
        owner_id=owner_id,
        model=model,
        since=_aware(since, "--since"),
        until=_aware(until, "--until"),
    )
    options = {
        "file_format": file_format,
        "flavor": flavor,
        "style": style,
        "min_rating": min_rating,
        "max_rating": max_rating,
        "where": where,
    }
    run(_export(config, database_url, kind, output, options), level=_QUIET)


_EXPORT_OPTIONS = {
    "kind": "KIND",
    "to": "--output",
    "file_format": "--format",
    "flavor": "--flavor",
    "style": "--style",
    "min_rating": "--min-rating",
    "max_rating": "--max-rating",
}


async def _export(
    config_path: Path | None,
    database_url: str | None,
    kind: str,
    output: str,
    options: dict[str, Any],
) -> None:
    from ai_feedback.export import export  # noqa: PLC0415 - loaded by this command only

    to: Any = sys.stdout.buffer if output == "-" else Path(output)
    async with _collector(config_path, database_url) as collector:
        with _progress("exporting") as progress:
            task = progress.add_task("", total=None, rate="")
            try:
                summary = await export(
                    collector,
                    kind,  # type: ignore[arg-type]
                    to,
                    progress=_updater(progress, task),
                    **options,
                )
            except FeedbackValidationError as exc:  # named as the command line names it
                option = _EXPORT_OPTIONS.get(exc.field)
                raise exc if option is None else exc.renamed(option) from None
    where = summary.path or "stdout"
    _stderr.print(
        f"{summary.written:,} {summary.kind} rows ({summary.file_format}) to {where} "
        f"from {summary.scanned:,} items in {summary.seconds:.2f} s"
    )
    for reason, count in summary.skipped.items():
        _stderr.print(f"  skipped {count:,}: {reason}")


def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines or one JSON document (an array, a Langfuse or MLflow page).",
            exists=True,
            dir_okay=False,
        ),
    ],
    source: Annotated[
        str,
        typer.Option(
            help="auto, raw, langfuse, langsmith or mlflow (auto: by each record's keys)."
        ),
    ] = "auto",
    owner_id: Annotated[
        str | None,
        typer.Option(
            "--owner-id",
            help="Give every item this owner (the service's project, so that its keys "
            "see them); a record naming another owner is skipped.",
        ),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """
    Import feedback: a raw export, Langfuse scores, LangSmith feedback, MLflow traces.

    Invalid records are reported with their line number and skipped. Exit status 0 when
    every record was imported, 1 when some were skipped.
    """
    run(_import(config, database_url, file, source, owner_id), level=_QUIET)


async def _import(
    config_path: Path | None,
    database_url: str | None,
    file: Path,
    source: str,
    owner_id: str | None,
) -> int:
    from ai_feedback.importing import import_file  # noqa: PLC0415 - loaded by this command only

    async with _collector(config_path, database_url, existing=False) as collector:
        with _progress("importing") as progress:
            task = progress.add_task("", total=None, rate="")
            summary = await import_file(
                collector,
                file,
                source=source,  # type: ignore[arg-type]
                owner_id=owner_id,
                progress=_updater(progress, task),
            )
    _stderr.print(
        f"imported {_count(summary.imported, 'item')} from "
        f"{_count(summary.read, 'record')} of {file} "
        f"in {summary.seconds:.2f} s ({summary.invalid:,} skipped)"
    )
    for problem in summary.problems:
        _stderr.print(f"  {problem}", markup=False)
    if summary.invalid > len(summary.problems):
        _stderr.print(f"  ... and {summary.invalid - len(summary.problems):,} more")
    return EXIT_FAILED if summary.invalid else 0


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def delete_command(
    item_id: Annotated[str | None, typer.Option("--id", help="The item with this id.")] = None,
    trace_id: Annotated[str | None, typer.Option(help="Every item of this trace.")] = None,
    session_id: Annotated[str | None, typer.Option(help="Every item of this session.")] = None,
    owner_id: Annotated[str | None, typer.Option(help="Every item of this owner.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """
    Delete feedback by id, trace, session or owner, and print the receipt (JSON).

    Asks for confirmation, showing how many items match, unless --yes is given; without
    a terminal to ask on, --yes is required.
    """
    where = _filter(item_id=item_id, trace_id=trace_id, session_id=session_id, owner_id=owner_id)
    if where is None:
        typer.echo("error: give --id, --trace-id, --session-id or --owner-id", err=True)
        raise SystemExit(EXIT_USAGE)
    if not yes:
        if not _can_ask():
            typer.echo("error: not a terminal, cannot ask: add --yes to delete", err=True)
            raise SystemExit(EXIT_USAGE)
        matched: list[int] = []
        run(_count_matches(config, database_url, where, matched), level=_QUIET)
        # Asked outside the event loop, so that Ctrl-C at the question ends the command.
        shown = ", ".join(f"{k}={v}" for k, v in where.to_dict().items())
        try:
            confirmed = typer.confirm(f"Delete {matched[0]:,} item(s) matching {shown}?")
        except typer.Abort as exc:  # Ctrl-C (or the end of input) at the question
            typer.echo("\nNothing deleted.", err=True)
            ctrl_c = isinstance(exc.__context__, KeyboardInterrupt)
            raise SystemExit(EXIT_INTERRUPTED if ctrl_c else EXIT_FAILED) from None
        if not confirmed:
            typer.echo("Nothing deleted.", err=True)
            raise SystemExit(EXIT_FAILED)
    run(_delete(config, database_url, where), level=_QUIET)


async def _count_matches(
    config_path: Path | None, database_url: str | None, where: FeedbackFilter, into: list[int]
) -> None:
    async with _collector(config_path, database_url) as collector:
        matched = 0
        async for _ in collector.store.scan(where):  # type: ignore[attr-defined]
            matched += 1
    into.append(matched)


async def _delete(config_path: Path | None, database_url: str | None, where: FeedbackFilter) -> int:
    async with _collector(config_path, database_url) as collector:
        receipt = await collector.delete(where)
    typer.echo(json.dumps(receipt.to_dict(), indent=2))
    return 0


def migrate_command(
    target: Annotated[
        int | None, typer.Option(help="Schema version to reach (default: the latest).", min=1)
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    rebuild_rollup: Annotated[
        bool,
        typer.Option(
            "--rebuild-rollup",
            help="Then count the statistics rollup again from the items (after rows were "
            "loaded into the feedback table with SQL).",
        ),
    ] = False,
) -> None:
    """
    Bring the store's schema up to date (or to --target) and print its version.
    """
    run(_migrate(config, database_url, target, rebuild=rebuild_rollup), level=_QUIET)


async def _migrate(
    config_path: Path | None, database_url: str | None, target: int | None, *, rebuild: bool
) -> int:
    config = _store_config(config_path, database_url)
    url = config.resolved_database_url
    if config.store == "memory" or url is None:
        msg = "is memory, which has no schema: set database_url or --database-url"
        raise FeedbackValidationError("store", msg)
    if rebuild and target is not None:
        msg = "cannot go with --rebuild-rollup: the rollup needs the latest schema"
        raise FeedbackValidationError("--target", msg, target)
    if rebuild and config.cache_url is not None:
        require_extra("redis", "redis")  # the cache is purged too: fail before migrating
    if config.store == "postgresql":
        from ai_feedback.stores import postgres  # noqa: PLC0415 - the postgresql extra

        version = await postgres.migrate(url, schema=config.database_schema, target=target)
    else:
        from ai_feedback.stores import sqlite  # noqa: PLC0415

        version = await sqlite.migrate(url, target=target)
    typer.echo(f"{config.store} store at {masked_url(url)}: schema version {version}")
    if rebuild:
        # Through the configured Redis cache, if any: it drops the statistics it cached.
        opened = await open_store(config)
        store = cast("CachedFeedbackStore | SQLiteFeedbackStore | PostgresFeedbackStore", opened)
        async with store:
            counted = await store.rebuild_rollup()
            stale = getattr(store, "purge_pending", False)
        typer.echo(f"statistics rollup rebuilt from {counted:,} item(s)")
        if stale:
            typer.echo(
                f"error: the Redis cache at {masked_url(config.cache_url or '')} could not be "
                "purged: services may serve the statistics cached before the rebuild until "
                "those entries expire; run the command again once Redis answers",
                err=True,
            )
            return EXIT_FAILED
    return 0


def demo_command(config: ConfigOption = None) -> None:
    """
    Record feedback of every type into the demo store and print the statistics.
    """
    from ai_feedback import demo  # noqa: PLC0415 - loaded by this command only

    async def _demo() -> None:
        await demo.run(str(config) if config else None)

    run(_demo(), level=_QUIET)


def config_command(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """
    Show the effective configuration and where each value came from.

    Warns about environment variables that look like settings but are ignored, such as
    AI_FEEDBACK_STORE (settings use two underscores: AI_FEEDBACK__STORE).
    """
    run(_config(config, as_json), level=_QUIET)


async def _config(config_path: Path | None, as_json: bool) -> None:
    report = config_report(config_path)
    ignored = ignored_variables()
    if as_json:
        document = {
            "settings": {v.key: {"value": v.value, "source": v.source} for v in report},
            "ignored_variables": dict(ignored),
        }
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        table = Table(title="ai-feedback configuration")
        table.add_column("setting", no_wrap=True)
        table.add_column("value")
        table.add_column("source", no_wrap=True)
        for value in report:
            table.add_row(value.key, _cell(value.value), value.source)
        Console(highlight=False).print(table)
    for name, hint in ignored:
        _stderr.print(f"warning: {name} {hint}", markup=False)


def _cell(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _aware(value: datetime | None, option: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        msg = "must include a UTC offset, e.g. 2026-01-31T00:00:00+00:00"
        raise typer.BadParameter(msg, param_hint=option)
    return value


def _can_ask() -> bool:
    return sys.stdin.isatty()
