"""
The ``ai-feedback`` command line (also ``python -m ai_feedback``).

Every command reads the same configuration as the library (``./application.yaml`` or
``--config``, then ``AI_FEEDBACK__*`` variables). Errors are one line on stderr, and
the exit status tells scripts what happened: 0 done, 1 failed, 2 bad usage or
configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import signal
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from ai_feedback._cli_base import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOption,
    OneLineErrors,
    run,
    setup_logging,
)
from ai_feedback._cli_data import (
    config_command,
    delete_command,
    demo_command,
    export_command,
    import_command,
    migrate_command,
    stats_command,
)
from ai_feedback._server_settings import ApiKeyEntry
from ai_feedback._urls import masked_url
from ai_feedback.app import Application
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import (
    FeedbackConfigurationError,
    FeedbackError,
)
from ai_feedback.module import FeedbackModule

__all__ = ["app", "main"]

app = typer.Typer(
    name="ai-feedback",
    help="Collect feedback on AI model outputs, store it, and get it back out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineErrors,
)
keys_app = typer.Typer(help="API keys for the service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.command("stats")(stats_command)
app.command("export")(export_command)
app.command("import")(import_command)
app.command("delete")(delete_command)
app.command("migrate")(migrate_command)
app.command("demo")(demo_command)
app.command("config")(config_command)
CONFIG_FILE_VARIABLE = "AI_FEEDBACK_CONFIG_FILE"
"""Tells the service's workers which YAML file ``serve --config`` named."""
INSECURE_VARIABLE = "AI_FEEDBACK_INSECURE_NO_AUTH"
"""Tells the service's workers that ``serve --insecure-no-auth`` was given."""
RUN_SECRET_VARIABLE = "AI_FEEDBACK_RUN_TOKEN_SECRET"  # noqa: S105 - a variable name
"""Hands the service's workers one signing key when ``server.token_secret`` is unset."""
_MIN_SECRET = 32


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
    run(_writer(config), service=True)


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
        where = status.spool.location if status.spool else masked_url(config.spool_url or "")
        typer.echo(f"Writing feedback from {where} to the {config.store} store (Ctrl-C stops).")
        await asyncio.Event().wait()


@app.command()
def serve(  # noqa: PLR0917 - Typer reads the options from the parameters
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without API keys (project 'default'): for a local trial only.",
        ),
    ] = False,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log a line per request (off by default: /metrics counts requests).",
        ),
    ] = False,
) -> None:
    """
    Run the HTTP service under uvicorn until SIGTERM or SIGINT (it drains, then exits).

    Keys, CORS and limits come from the server section of the configuration; with no keys
    the service refuses to start unless --insecure-no-auth is given.
    """
    try:
        import uvicorn  # noqa: PLC0415 - the server extra
    except ModuleNotFoundError:
        typer.echo(
            "error: the service needs its extra: pip install 'ai-feedback[server]'", err=True
        )
        raise SystemExit(EXIT_USAGE) from None
    setup_logging()
    os.environ[CONFIG_FILE_VARIABLE] = str(config.resolve()) if config else ""
    os.environ[INSECURE_VARIABLE] = "1" if insecure_no_auth else ""
    try:
        settings = FeedbackConfig.load(config)
        # Without a configured signing key, every worker must still sign browser tokens
        # and dashboard sessions alike: one key for this run, handed down to them.
        run_secret = "" if settings.server.token_secret else secrets.token_urlsafe(32)
        os.environ[RUN_SECRET_VARIABLE] = run_secret
        create_from_environment()  # fail here, with one line, rather than in each worker
    except FeedbackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    taken = _unbindable(host, port)
    if taken is not None:  # uvicorn would log it and exit with status 3
        typer.echo(f"error: cannot listen on {host}:{port}: {taken}", err=True)
        raise SystemExit(EXIT_FAILED)
    if run_secret:
        logging.getLogger("ai_feedback").warning(
            "server.token_secret is not set: browser tokens and dashboard logins are signed "
            "with a key made for this run (shared by its workers); they end when the "
            "service restarts"
        )
    # uvicorn drains, then raises the signal it caught again, against the handler found
    # at start: make that one end the process quietly, with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped)
    uvicorn.run(
        "ai_feedback.cli:create_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds) + 5,
    )


def _unbindable(host: str, port: int) -> str | None:
    """
    Return why ``host:port`` cannot be listened on (taken, no such address), or None.

    Binds the way uvicorn will (asyncio's ``create_server``: every address of the host,
    IPv6 sockets for IPv6 only), then lets go at once.
    """

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, host or None, port, reuse_address=True)
        server.close()
        await server.wait_closed()

    try:
        asyncio.run(probe())
    except OSError as exc:  # asyncio words it at length; the system's words are enough
        errno = exc.errno
        return os.strerror(errno) if errno and errno > 0 else exc.strerror or str(exc)
    return None


@keys_app.command("new")
def new_key(
    project: Annotated[str, typer.Option(help="The project the key writes to and reads.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: ingest, read, admin.")
    ] = "ingest,read",
    key_id: Annotated[str | None, typer.Option("--id", help="The key's public id.")] = None,
) -> None:
    """
    Print a new API key's secret (shown once) and the entry to add to server.api_keys.
    """
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    secret = "afk_" + secrets.token_urlsafe(32)
    try:
        entry = ApiKeyEntry(
            id=key_id or f"key-{secrets.token_hex(4)}",
            secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
            project=project,
            scopes=tuple(wanted),  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = {"id": "--id"}.get(str(first["loc"][0]), f"--{first['loc'][0]}")
        typer.echo(f"error: {field}: {first['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    typer.echo(f"Secret (shown once, keep it safe): {secret}")
    typer.echo("Add this entry under ai_feedback.server.api_keys in application.yaml:")
    typer.echo(
        yaml.safe_dump([entry.model_dump(mode="json")], sort_keys=False, default_flow_style=False)
    )


def create_from_environment() -> Any:  # noqa: ANN401 - a FastAPI app
    """
    Build the service the way ``serve`` configured it (the factory each worker calls).
    """
    from ai_feedback.server import create_app  # noqa: PLC0415 - the server extra

    path = os.environ.get(CONFIG_FILE_VARIABLE) or None
    insecure = os.environ.get(INSECURE_VARIABLE) == "1"
    config = FeedbackConfig.load(path)
    run_secret = os.environ.get(RUN_SECRET_VARIABLE)
    if run_secret and config.server.token_secret is None:
        if len(run_secret) < _MIN_SECRET:
            msg = f"must be at least {_MIN_SECRET} characters (serve sets it)"
            raise FeedbackConfigurationError(RUN_SECRET_VARIABLE, msg)
        server = config.server.model_copy(update={"token_secret": run_secret})
        config = config.model_copy(update={"server": server})
    return create_app(config, insecure_no_auth=insecure)


def _stopped(signum: int, frame: object) -> None:
    del signum, frame
    raise SystemExit(0)


def main() -> None:
    """
    Run the command line.
    """
    app(prog_name="ai-feedback")


if __name__ == "__main__":  # pragma: no cover
    main()
