"""Tests of the demo (the README's main job)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_feedback.demo import main, run


async def test_demo_records_all_four_types(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo stores one item of each type plus ratings and prints statistics."""
    stats = await run()
    assert stats["by_type"] == {"rating": 4, "text": 1, "correction": 1, "label": 1}
    assert stats["average_rating"] == pytest.approx(3.875)
    out = capsys.readouterr().out
    assert "gpt-4o only: total_count=5" in out
    assert "store: sqlite at sqlite:///./ai_feedback_demo.db" in out


async def test_demo_statistics_grow_across_runs() -> None:
    """By default the demo keeps its data in SQLite, so a second run counts both runs."""
    first = await run()
    second = await run()
    assert second["total_count"] == 2 * first["total_count"] == 14
    assert Path("ai_feedback_demo.db").exists()


async def test_demo_follows_a_configured_store(capsys: pytest.CaptureFixture[str]) -> None:
    """A store chosen in application.yaml wins over the demo's SQLite default."""
    Path("application.yaml").write_text("ai_feedback:\n  store: memory\n", encoding="utf-8")
    await run()
    await run()
    assert "store: memory" in capsys.readouterr().out
    assert not Path("ai_feedback_demo.db").exists()


def test_demo_cli_reports_configuration_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad configuration file makes the CLI exit 1 with the error, not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("ai_feedback:\n  enabeld: true\n", encoding="utf-8")
    assert main(["--config", str(path)]) == 1
    assert "did you mean 'enabled'" in capsys.readouterr().err
