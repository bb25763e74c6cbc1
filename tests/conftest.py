"""Shared fixtures: every test runs in its own empty directory with no ai_feedback env vars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ai_feedback.config import ENV_PREFIXES


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in an empty folder with no AI_FEEDBACK__/LEX_AI_FEEDBACK__ variables."""
    monkeypatch.chdir(tmp_path)
    # datasets (the export tests' loader) reads local files only, and caches in the test's folder.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / ".hf-cache"))
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
