"""The ai-feedback command line: help, version, and one-line errors with exit codes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ai_feedback import FeedbackConfig
from ai_feedback.cli import _unbindable, app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    """--help shows the commands; every command has its own --help."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "writer" in result.output
    assert runner.invoke(app, ["writer", "--help"]).exit_code == 0


def test_version() -> None:
    """--version prints the installed version."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("ai-feedback ")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["stats", "--window-hours", "abc"], "error: Invalid value for '--window-hours'"),
        (["stats", "--nope"], "error: No such option: --nope"),
        (["bogus"], "error: No such command 'bogus'. (see ai-feedback --help)"),
        (["keys", "new"], "error: Missing option '--project'. (see ai-feedback keys new --help)"),
        (["stats", "--config", "missing.yaml"], "error: Invalid value for '--config'"),
        (
            ["keys", "new", "--project"],
            "error: Option '--project' requires an argument. (see ai-feedback keys new --help)",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    """A bad option value, an unknown option or command: one line on stderr, exit 2."""
    result = runner.invoke(app, args, prog_name="ai-feedback")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(line), result.stderr
    assert result.stderr.count("\n") == 1


def test_no_command_shows_the_help() -> None:
    """Without a command the help is shown (exit 2, as for any missing argument)."""
    result = runner.invoke(app, [], prog_name="ai-feedback")
    assert result.exit_code == 2
    assert "Commands" in result.stdout
    assert result.stderr == ""


def test_writer_without_a_nats_spool_is_a_usage_error() -> None:
    """Writer needs a nats:// spool_url: exit 2 with one line naming spool_url."""
    result = runner.invoke(app, ["writer"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "spool_url" in result.output


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A misspelled key in the YAML file is reported in one line, without a traceback."""
    config = tmp_path / "app.yaml"
    config.write_text("ai_feedback:\n  spool_ulr: nats://x\n", encoding="utf-8")
    result = runner.invoke(app, ["writer", "--config", str(config)])
    assert result.exit_code == 2
    assert "did you mean 'spool_url'" in result.output
    assert "Traceback" not in result.output


def test_python_dash_m_runs_the_cli() -> None:
    """Python -m ai_feedback is the same command line."""
    done = subprocess.run(
        [sys.executable, "-m", "ai_feedback", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "writer" in done.stdout


def test_keys_new_prints_a_secret_and_a_working_entry() -> None:
    """Keys new prints a secret once and an entry whose hash matches it."""
    result = runner.invoke(
        app, ["keys", "new", "--project", "acme", "--scopes", "ingest,admin", "--id", "k1"]
    )
    assert result.exit_code == 0
    secret = result.output.split("keep it safe): ")[1].split()[0]
    entry = yaml.safe_load(result.output.split("application.yaml:\n")[1])[0]
    assert entry["id"] == "k1"
    assert entry["project"] == "acme"
    assert entry["scopes"] == ["ingest", "admin"]
    assert entry["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert FeedbackConfig(server={"api_keys": [entry]}).server.api_keys[0].id == "k1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--project", "bad project"], "--project"),
        (["--project", "p", "--scopes", "ingest,write"], "--scopes"),
        (["--project", "p", "--scopes", ""], "--scopes"),
        (["--project", "p", "--scopes", "ingest,ingest"], "--scopes: must name each scope once"),
    ],
)
def test_keys_new_refuses_bad_options(args: list[str], needle: str) -> None:
    """A bad project or scope is one line naming the option, exit 2."""
    result = runner.invoke(app, ["keys", "new", *args])
    assert result.exit_code == 2
    assert needle in result.output


def test_serve_without_keys_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve with no keys configured says so in one line and exits 2."""
    # The variable serve hands its workers does not switch the keys off from outside.
    monkeypatch.setenv("AI_FEEDBACK_INSECURE_NO_AUTH", "1")
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "server.api_keys" in result.output
    assert "--insecure-no-auth" in result.output


def test_serve_on_a_taken_port_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port another process listens on is said in one line (uvicorn would exit 3)."""
    for name in ("AI_FEEDBACK_CONFIG_FILE", "AI_FEEDBACK_INSECURE_NO_AUTH"):
        monkeypatch.setenv(name, "")  # serve sets them for its workers
    monkeypatch.setenv("AI_FEEDBACK_RUN_TOKEN_SECRET", "")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--insecure-no-auth"])
    assert result.exit_code == 1, result.output
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("args", "logged"), [([], False), (["--access-log"], True)])
def test_serve_logs_each_request_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, args: list[str], logged: bool
) -> None:
    """Uvicorn's per-request access log is off unless --access-log is given."""
    import uvicorn  # noqa: PLC0415

    from ai_feedback import cli  # noqa: PLC0415

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr("ai_feedback.cli.signal.signal", lambda *a: None)
    monkeypatch.setenv(cli.CONFIG_FILE_VARIABLE, "")
    monkeypatch.setenv(cli.INSECURE_VARIABLE, "")
    result = runner.invoke(app, ["serve", "--insecure-no-auth", *args])
    assert result.exit_code == 0, result.output
    assert seen["access_log"] is logged
    assert "forwarded_allow_ips" not in seen  # uvicorn reads FORWARDED_ALLOW_IPS then


async def test_serve_uses_the_store_of_its_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The service started with --config FILE runs on FILE's store, not ./application.yaml's."""
    from ai_feedback import cli  # noqa: PLC0415

    Path("application.yaml").write_text("ai_feedback:\n  store: sqlite\n", encoding="utf-8")
    path = tmp_path / "service.yaml"
    path.write_text("ai_feedback:\n  store: memory\n  window_hours: 5\n", encoding="utf-8")
    monkeypatch.setenv(cli.CONFIG_FILE_VARIABLE, str(path))
    monkeypatch.setenv(cli.INSECURE_VARIABLE, "1")
    service_app = cli.create_from_environment()
    async with service_app.router.lifespan_context(service_app):
        collector = service_app.state.ai_feedback.collector
        assert (collector.config.store, collector.config.window_hours) == ("memory", 5)
        assert (await collector.status()).spool.kind == "memory"
    assert not Path("ai_feedback.db").exists()


@pytest.mark.parametrize("configured", [False, True])
def test_serve_gives_its_workers_one_signing_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, configured: bool
) -> None:
    """Without token_secret, a token minted by one worker is accepted by another."""
    import uvicorn  # noqa: PLC0415
    from starlette.testclient import TestClient  # noqa: PLC0415

    from ai_feedback import cli  # noqa: PLC0415

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    monkeypatch.setattr("ai_feedback.cli.signal.signal", lambda *a: None)
    for name in (cli.CONFIG_FILE_VARIABLE, cli.INSECURE_VARIABLE, cli.RUN_SECRET_VARIABLE):
        monkeypatch.setenv(name, "")
    digest = hashlib.sha256(b"afk_worker_secret").hexdigest()
    path = tmp_path / "service.yaml"
    path.write_text(
        "ai_feedback:\n  server:\n"
        + ("    token_secret: " + "c" * 40 + "\n" if configured else "")
        + "    api_keys:\n"
        f"      - {{id: k, secret_sha256: {digest}, project: p, scopes: [ingest, read]}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["serve", "--config", str(path), "--workers", "2"])
    assert result.exit_code == 0, result.output
    handed = os.environ[cli.RUN_SECRET_VARIABLE]
    assert (handed == "") is configured
    key = {"x-api-key": "afk_worker_secret"}
    with (
        TestClient(cli.create_from_environment()) as first,
        TestClient(cli.create_from_environment()) as second,
    ):
        expected = "c" * 40 if configured else handed
        for worker in (first, second):
            assert worker.app.state.ai_feedback.auth.token_secret == expected  # type: ignore[attr-defined]
        minted = first.post("/v1/tokens", json={"trace_id": "t-1"}, headers=key)
        assert minted.status_code == 201, minted.text
        bearer = {"Authorization": f"Bearer {minted.json()['token']}"}
        sent = second.post("/v1/feedback", json={"score": 1}, headers=bearer)
        assert sent.status_code == 202, sent.text


def test_a_short_handed_down_signing_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The workers' signing key from the environment must be as long as token_secret."""
    from ai_feedback import cli  # noqa: PLC0415
    from ai_feedback.exceptions import FeedbackConfigurationError  # noqa: PLC0415

    path = tmp_path / "service.yaml"
    path.write_text("ai_feedback:\n  store: memory\n", encoding="utf-8")
    monkeypatch.setenv(cli.CONFIG_FILE_VARIABLE, str(path))
    monkeypatch.setenv(cli.INSECURE_VARIABLE, "1")
    monkeypatch.setenv(cli.RUN_SECRET_VARIABLE, "short")
    with pytest.raises(FeedbackConfigurationError, match="at least 32 characters"):
        cli.create_from_environment()


def test_the_port_check_binds_as_uvicorn_does() -> None:
    """A free port passes (also for every interface); a taken one says why."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _unbindable("127.0.0.1", port) == "Address already in use"
    assert _unbindable("127.0.0.1", port) is None
    assert _unbindable("", 0) is None
    assert _unbindable("no-such-host.invalid", 8000) is not None


def test_a_malformed_database_url_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database URL with a bad port: one line naming database_url, exit 2, no password."""
    monkeypatch.setenv("AI_FEEDBACK__DATABASE_URL", "postgresql://u:s3cret@h:notaport/db")
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "database_url" in result.output
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output
