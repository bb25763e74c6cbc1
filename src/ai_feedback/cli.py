"""
The ``ai-feedback`` command line (also ``python -m ai_feedback``).

Every command reads the same configuration as the library (``./application.yaml`` or
``--config``, then ``AI_FEEDBACK__*`` variables). Errors are one line on stderr, and
the exit status tells scripts what happened: 0 done, 1 failed, 2 bad usage or
configuration.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from ai_feedback.app import Application
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackError,
    FeedbackValidationError,
)
from ai_feedback.module import FeedbackModule

__all__ = ["app", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="ai-feedback",
    help="Collect feedback on AI model outputs, store it, and get it back out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML file with an ai_feedback: section (default: ./application.yaml).",
        exists=True,
        dir_okay=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ai-feedback {metadata.version('ai-feedback')}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """
    Collect feedback on AI model outputs, store it, and get it back out.
    """


@app.command()
def writer(config: ConfigOption = None) -> None:
    """
    Drain a shared NATS JetStream spool into the store until SIGTERM or SIGINT.

    Run one or more writers next to API processes that set run_writer: false and a
    nats:// spool_url. Each takes batches, writes them, and acknowledges them only after
    the store committed. On SIGTERM it finishes within shutdown_timeout_seconds; what it
    had not written is delivered to another writer.
    """
    _run(_writer(config))


async def _writer(config_path: Path | None) -> None:
    config = FeedbackConfig.load(config_path, run_writer=True)
    if not config.async_processing or not (config.spool_url or "").startswith(
        ("nats://", "tls://")
    ):
        msg = (
            "must be a nats:// URL (with async_processing on) for a writer process; with a "
            "local spool each application process writes its own items"
        )
        raise FeedbackConfigurationError("spool_url", msg)
    application = Application(modules=[FeedbackModule.configure(config)], config_path=config_path)
    async with application:
        collector = await application.container.resolve(FeedbackCollector)
        status = await collector.status()
        where = status.spool.location if status.spool else config.spool_url
        typer.echo(f"Writing feedback from {where} to the {config.store} store (Ctrl-C stops).")
        await asyncio.Event().wait()


def _run(coroutine: object) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    except SystemExit as stop:
        if stop.code in (143, 130):  # stopped by SIGTERM/SIGINT after a graceful shutdown
            raise SystemExit(0) from None
        raise
    except (FeedbackConfigurationError, FeedbackValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except FeedbackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise SystemExit(0) from None


def main() -> None:
    """
    Run the command line.
    """
    app(prog_name="ai-feedback")


if __name__ == "__main__":  # pragma: no cover
    main()
