"""The ai-feedback command line: help, version, and one-line errors with exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ai_feedback.cli import app

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
