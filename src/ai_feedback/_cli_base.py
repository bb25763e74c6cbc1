"""
What the commands of the ``ai-feedback`` command line share.

Options, exit codes, and running a coroutine with errors reported as one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackError,
    FeedbackValidationError,
)

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "ConfigOption", "run", "setup_logging"]

EXIT_FAILED = 1
"""The command ran and failed (a store error, records that could not be imported)."""
EXIT_USAGE = 2
"""The command was given bad options or a bad configuration: nothing was done."""
EXIT_INTERRUPTED = 130
"""The command was interrupted (Ctrl-C) before it finished."""

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


def setup_logging(level: int = logging.INFO) -> None:
    """
    Log to stderr, one line per record.
    """
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def run(
    coroutine: Coroutine[Any, Any, int | None],
    *,
    level: int = logging.INFO,
    service: bool = False,
) -> None:
    """
    Run ``coroutine``; exit with the status it returns, or with one line on an error.

    Exit statuses: 0 done, 1 failed (a store or file error), 2 bad usage or configuration.
    A ``service`` (it runs until stopped) exits 0 after a graceful stop by SIGTERM or
    SIGINT; a job stopped that way did not finish, and exits 143 (or 130).
    """
    setup_logging(level)
    try:
        status = asyncio.run(coroutine)
    except SystemExit as stop:
        if stop.code in (143, 130):  # stopped by SIGTERM/SIGINT after a graceful shutdown
            if service:
                raise SystemExit(0) from None
            typer.echo("error: stopped by a signal before it finished", err=True)
        raise
    except (FeedbackConfigurationError, FeedbackValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except (FeedbackError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    if status:
        raise SystemExit(status)
