"""
What the commands of the ``ai-feedback`` command line share.

Options, exit codes, and running a coroutine with errors reported as one line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackError,
    FeedbackValidationError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "ConfigOption",
    "OneLineErrors",
    "run",
    "setup_logging",
]

EXIT_FAILED = 1
"""The command ran and failed (a store error, records that could not be imported)."""
EXIT_USAGE = 2
"""The command was given bad options or a bad configuration: nothing was done."""
EXIT_INTERRUPTED = 130
"""The command was interrupted (Ctrl-C) before it finished."""


class OneLineErrors(TyperGroup):
    """
    The command group: usage errors on one line, like every other error.

    A bad option value or an unknown command is one line on stderr naming the command's
    ``--help``, instead of Click's block of usage, hint and framed message.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,  # noqa: ANN401 - passed on to Click
    ) -> Any:  # noqa: ANN401 - Click's return value
        """
        Run the command line and exit with its status.

        With ``standalone_mode`` false it returns the status instead, as Click does.
        """
        invoke = functools.partial(
            super().main,
            args,
            prog_name,
            complete_var,
            standalone_mode=False,
            windows_expand_args=windows_expand_args,
            **extra,
        )
        if not standalone_mode:
            return invoke()
        try:
            status = invoke()
        except typer.TyperException as exc:  # Click's: a bad option value, an unknown command
            message = exc.format_message()
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one printed the help
                context = getattr(exc, "ctx", None)
                command = getattr(context, "command_path", None) or self._path(args, prog_name)
                typer.echo(f"error: {message} (see {command} --help)", err=True)
            elif message:
                typer.echo(message, err=True)
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(status if isinstance(status, int) else 0)

    def _path(self, args: Sequence[str] | None, prog_name: str | None) -> str:
        """The command the arguments name (``ai-feedback keys new``), for an error without one."""
        path = [prog_name or "ai-feedback"]
        group: Any = self
        for word in sys.argv[1:] if args is None else args:
            command = getattr(group, "commands", {}).get(word)
            if command is None:
                break
            path.append(word)
            group = command
        return " ".join(path)


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
