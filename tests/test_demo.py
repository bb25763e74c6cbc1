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


def test_demo_cli_reports_configuration_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad configuration file makes the CLI exit 1 with the error, not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text("ai_feedback:\n  enabeld: true\n", encoding="utf-8")
    assert main(["--config", str(path)]) == 1
    assert "did you mean 'enabled'" in capsys.readouterr().err
