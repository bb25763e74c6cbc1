"""Every Python example in the README runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The example executes without error (ASGI apps also answer a request)."""
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)  # noqa: S102 - our own docs
    app = namespace.get("app")
    if app is not None and hasattr(app, "router"):
        with TestClient(app) as client:  # type: ignore[arg-type]
            answer = client.post("/chat", json={"question": "hi"})
            assert answer.status_code == 200
            context_id = answer.headers["x-feedback-context-id"]
            denied = client.post("/feedback/", json={"trace_id": context_id, "score": 1})
            assert denied.status_code == 403
            sent = client.post(
                "/feedback/",
                json={"trace_id": context_id, "score": 1},
                headers={"x-api-key": "secret"},
            )
            assert sent.status_code == 202


def test_readme_has_examples() -> None:
    """The README keeps its runnable examples."""
    assert len(BLOCKS) >= 8
