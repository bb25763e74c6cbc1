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
    """
    The example executes without error and prints what its comments say.

    A ``# prints:`` comment names a line of the output (``...`` stands for anything);
    ASGI apps also answer a request.
    """
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)  # noqa: S102 - our own docs
    printed = capsys.readouterr().out.splitlines()
    for expected in re.findall(r"# prints: (.+)$", source, re.MULTILINE):
        shown = ".*".join(re.escape(part) for part in expected.split("..."))
        assert any(re.fullmatch(shown, line) for line in printed), (expected, printed)
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
    """The README keeps its runnable examples, and says what some of them print."""
    assert len(BLOCKS) >= 8
    assert sum(block.count("# prints: ") for block in BLOCKS) >= 9


def _configuration_table() -> dict[str, str]:
    """The README's configuration table: each key and the default it states."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | default | meaning |") :].split("\n\n", 1)[0]
    stated: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        keys, default = (cell.strip() for cell in row.strip("|").split("|")[:2])
        names = re.findall(r"`(\w+)`", keys)
        values = default.split(" / ") if len(names) > 1 else [default]
        assert len(values) == len(names), row
        stated.update(zip(names, values, strict=True))
    return stated


# Defaults the table states in words, and what the code holds for them.
_IN_WORDS = {
    "none": None,
    "derived": None,  # spool_url: beside the store, see the table
    "`memory`, or the kind of `database_url`": "memory",
}


def test_the_configuration_table_states_every_key_and_its_default() -> None:
    """Every setting is in the README's table with the default the code has, and no other."""
    from ai_feedback import FeedbackConfig  # noqa: PLC0415
    from ai_feedback._server_settings import ServerSettings  # noqa: PLC0415

    stated = _configuration_table()
    assert set(stated) == set(FeedbackConfig.model_fields)
    for name, field in FeedbackConfig.model_fields.items():
        if name == "server":
            continue
        words = stated[name]
        expected = _IN_WORDS[words] if words in _IN_WORDS else words.strip("`")
        actual = field.default
        if isinstance(actual, bool):
            actual = str(actual).lower()
        elif isinstance(actual, float) and actual.is_integer():
            actual = str(int(actual))
        elif isinstance(actual, int):
            actual = str(actual)
        assert actual == expected, name
    server_row = README.read_text(encoding="utf-8").split("| `server` | |", 1)[1].split("\n")[0]
    described = dict(re.findall(r"`(\w+)`(?: \(([^)]*)\))?", server_row.split(";")[0]))
    assert set(described) == set(ServerSettings.model_fields)
    for name, words in {"token_max_seconds": "7 days", "max_body_bytes": "1 MiB"}.items():
        assert described[name] == words
    defaults = {n: f.default for n, f in ServerSettings.model_fields.items()}
    assert (defaults["token_max_seconds"], defaults["max_body_bytes"]) == (7 * 86400, 2**20)
    for name in ("body_timeout_seconds", "batch_max_items"):
        assert float(described[name]) == defaults[name], name
