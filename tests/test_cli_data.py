"""The data commands: stats, export, import, delete, migrate, demo and config."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ai_feedback import FeedbackItem, FeedbackType
from ai_feedback.cli import app
from ai_feedback.stores._pg_schema import LATEST_VERSION as POSTGRES_LATEST
from ai_feedback.stores._sqlite_schema import LATEST_VERSION as SQLITE_LATEST
from tests.stores.backend_postgresql import POSTGRES_URL, drop_schema, new_schema_name

runner = CliRunner()
COMMANDS = ["stats", "export", "import", "delete", "migrate", "demo", "config", "serve", "writer"]


def _db(tmp_path: Path) -> list[str]:
    (tmp_path / "cli.db").touch()  # an empty file is an empty database
    return ["--database-url", f"sqlite:///{tmp_path}/cli.db"]


def _raw(tmp_path: Path, items: list[FeedbackItem]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"".join(orjson.dumps(i.to_dict()) + b"\n" for i in items))
    return path


def _session(tmp_path: Path, n: int = 3, session: str = "s1") -> list[FeedbackItem]:
    items = [
        FeedbackItem(
            FeedbackType.RATING,
            5,
            context={
                "session_id": session,
                "model": "m",
                "captured": {"input": f"question {i}", "output": f"answer {i}"},
            },
        )
        for i in range(n)
    ]
    result = runner.invoke(app, ["import", str(_raw(tmp_path, items)), *_db(tmp_path)])
    assert result.exit_code == 0, result.output
    return items


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    """Each command answers --help with its usage and exit status 0."""
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_stats_shows_a_table_or_json(tmp_path: Path) -> None:
    """Stats prints the window's totals as a table, or as JSON with --json."""
    _session(tmp_path)
    table = runner.invoke(app, ["stats", *_db(tmp_path)])
    assert table.exit_code == 0
    assert "items" in table.stdout
    assert "average rating" in table.stdout
    data = json.loads(runner.invoke(app, ["stats", "--json", *_db(tmp_path)]).stdout)
    assert (data["total_count"], data["average_rating"], data["by_model"]["m"]["count"]) == (
        3,
        5.0,
        3,
    )


def test_export_writes_a_file_or_stdout_and_reports_skips(tmp_path: Path) -> None:
    """Export writes rows to -o or stdout; the summary with skip reasons goes to stderr."""
    _session(tmp_path)
    out = tmp_path / "sft.jsonl"
    result = runner.invoke(app, ["export", "sft", "-o", str(out), *_db(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["messages"][0]["content"] for r in rows) == [
        "question 0",
        "question 1",
        "question 2",
    ]
    assert "3 sft rows (jsonl)" in result.stderr
    streamed = runner.invoke(app, ["export", "kto", "--style", "standard", *_db(tmp_path)])
    assert streamed.exit_code == 0
    assert len(streamed.stdout.splitlines()) == 3
    assert json.loads(streamed.stdout.splitlines()[0])["label"] is True
    labels = runner.invoke(app, ["export", "labels", "-o", str(tmp_path / "l.csv"), *_db(tmp_path)])
    assert "skipped 3: rating feedback is not a label" in labels.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "chat"], "'KIND'"),
        (["export", "sft", "--format", "csv"], "'--format': csv holds flat rows"),
        (["export", "kto", "--flavor", "openai"], "'--flavor'"),
        (["export", "raw", "--since", "2026-01-01T00:00:00"], "UTC offset"),
        (["export", "kto", "--min-rating", "2", "--max-rating", "3"], "'--max-rating'"),
        (["export", "sft", "--min-rating", "nan"], "'--min-rating': must be a finite number"),
    ],
)
def test_bad_export_options_exit_2_with_one_line(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    """A bad option exits 2 with a message naming it, and writes no file."""
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "x.jsonl"), *_db(tmp_path)])
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_export_to_a_directory_exits_2_naming_the_output(tmp_path: Path) -> None:
    """-o naming a directory (or .) is one line naming --output, not a traceback."""
    for target in (".", str(tmp_path)):
        result = runner.invoke(app, ["export", "raw", "-o", target, *_db(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "Invalid '--output': must name a file" in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [["delete", "--id", " ", "--yes"], ["export", "raw", "--session-id", "x" * 1000]],
)
def test_a_bad_filter_value_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    """An invalid id or session id is a usage error naming the field, not a traceback."""
    result = runner.invoke(app, [*args, *_db(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid '")
    assert "Traceback" not in result.output


def test_import_reports_bad_lines_and_exits_1(tmp_path: Path) -> None:
    """Import skips invalid records, names their lines, and exits 1; valid ones are stored."""
    good = FeedbackItem(FeedbackType.TEXT, "ok", context={"session_id": "s"})
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        orjson.dumps(good.to_dict()) + b"\nnot json\n" + b'{"feedback_type": 1, "value": 2}\n'
    )
    result = runner.invoke(app, ["import", str(path), *_db(tmp_path)])
    assert result.exit_code == 1
    assert "imported 1 item from 3 records" in result.stderr
    assert "line 2: Invalid 'record'" in result.stderr
    assert "line 3: Invalid 'feedback_type'" in result.stderr
    missing = runner.invoke(app, ["import", str(tmp_path / "nope.jsonl"), *_db(tmp_path)])
    assert missing.exit_code == 2


def test_import_of_mlflow_traces_counts_items_and_names_assessments(tmp_path: Path) -> None:
    """A trace line imports each assessment; a bad one is named by its position; exit 1."""
    trace = {
        "info": {
            "trace_id": "tr-1",
            "assessments": [
                {"assessment_id": "a-1", "assessment_name": "q", "feedback": {"value": 5.0}},
                {"assessment_id": "a-2", "feedback": {"error": {"error_code": "TIMEOUT"}}},
                {"assessment_id": "a-3", "expectation": {"value": "Paris"}},
            ],
        }
    }
    path = tmp_path / "traces.jsonl"
    path.write_bytes(orjson.dumps(trace) + b"\n")
    result = runner.invoke(app, ["import", str(path), "--source", "mlflow", *_db(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "imported 2 items from 1 record" in result.stderr
    assert "line 1: Invalid 'info.assessments[1].feedback.value'" in result.stderr
    stats = runner.invoke(app, ["stats", "--json", *_db(tmp_path)])
    by_type = json.loads(stats.stdout)["by_type"]
    assert by_type == {"rating": 1, "text": 0, "correction": 1, "label": 0}


def test_delete_asks_unless_yes_and_prints_a_receipt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete asks first (no terminal: --yes required); the receipt lists what went."""
    _session(tmp_path, 2, "gone")
    _session(tmp_path, 1, "kept")
    assert runner.invoke(app, ["delete", *_db(tmp_path)]).exit_code == 2  # nothing to match
    refused = runner.invoke(app, ["delete", "--session-id", "gone", *_db(tmp_path)])
    assert refused.exit_code == 2
    assert "add --yes" in refused.stderr
    monkeypatch.setattr("ai_feedback._cli_data._can_ask", lambda: True)
    declined = runner.invoke(app, ["delete", "--session-id", "gone", *_db(tmp_path)], input="n\n")
    assert declined.exit_code == 1
    assert "Delete 2 item(s) matching session_id=gone?" in declined.output
    stats = json.loads(runner.invoke(app, ["stats", "--json", *_db(tmp_path)]).stdout)
    assert stats["total_count"] == 3
    done = runner.invoke(app, ["delete", "--session-id", "gone", *_db(tmp_path)], input="y\n")
    assert done.exit_code == 0
    receipt = json.loads(done.stdout[done.stdout.index("{") :])
    assert receipt["criteria"] == {"session_id": "gone"}
    assert receipt["removed"]["items"] == 2
    assert runner.invoke(app, ["delete", "--id", "x", "--yes", *_db(tmp_path)]).exit_code == 0
    stats = json.loads(runner.invoke(app, ["stats", "--json", *_db(tmp_path)]).stdout)
    assert stats["total_count"] == 1
    raw = runner.invoke(app, ["export", "raw", *_db(tmp_path)])
    assert "gone" not in raw.stdout


def test_migrate_sqlite_reports_the_version(tmp_path: Path) -> None:
    """Migrate creates or upgrades the schema and prints its version; --target is checked."""
    result = runner.invoke(app, ["migrate", *_db(tmp_path)])
    assert result.exit_code == 0
    assert f"schema version {SQLITE_LATEST}" in result.stdout
    assert runner.invoke(app, ["migrate", "--target", "99", *_db(tmp_path)]).exit_code == 2


def _load_behind_the_back(tmp_path: Path, count: int) -> None:
    """Insert ``count`` ratings into the CLI tests' database with SQL: not in the rollup."""
    import sqlite3  # noqa: PLC0415

    from ai_feedback.stores import _sqlite_schema  # noqa: PLC0415
    from ai_feedback.stores import sqlite as sqlite_store  # noqa: PLC0415

    loaded = [FeedbackItem(FeedbackType.RATING, 3, context={"model": "m"}) for _ in range(count)]
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.executemany(_sqlite_schema.INSERT_SQL, sqlite_store._encode(loaded))


def _cached_config(tmp_path: Path, cache_url: str, more: str = "") -> Path:
    """Write a configuration of the CLI tests' SQLite database behind a Redis cache."""
    config = tmp_path / "cached.yaml"
    config.write_text(
        f"ai_feedback:\n  store: sqlite\n  database_url: sqlite:///{tmp_path}/cli.db\n"
        f"  cache_url: {cache_url}\n{more}",
        encoding="utf-8",
    )
    return config


def test_migrate_rebuilds_the_rollup_when_asked(tmp_path: Path) -> None:
    """--rebuild-rollup counts rows loaded with SQL into the statistics; bad uses are refused."""
    _session(tmp_path, n=2)
    _load_behind_the_back(tmp_path, 5)

    def total() -> int:
        stats = runner.invoke(app, ["stats", "--json", *_db(tmp_path)])
        return int(json.loads(stats.stdout)["total_count"])

    assert total() == 2
    result = runner.invoke(app, ["migrate", "--rebuild-rollup", *_db(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "statistics rollup rebuilt from 7 item(s)" in result.stdout
    assert total() == 7

    both = runner.invoke(app, ["migrate", "--rebuild-rollup", "--target", "3", *_db(tmp_path)])
    assert both.exit_code == 2
    assert "--target" in both.stderr
    assert "latest schema" in both.stderr
    config = tmp_path / "memory.yaml"
    config.write_text("ai_feedback:\n  store: memory\n", encoding="utf-8")
    memory = runner.invoke(app, ["migrate", "--rebuild-rollup", "--config", str(config)])
    assert memory.exit_code == 2
    assert "store" in memory.stderr


@pytest.mark.redis
def test_migrate_rebuild_drops_what_the_configured_cache_holds(tmp_path: Path) -> None:
    """With cache_url set, --rebuild-rollup also drops the statistics Redis cached."""
    from tests.stores.backend_cached import REDIS_URL, delete_keys, unique_prefix  # noqa: PLC0415

    prefix = unique_prefix()
    config = _cached_config(tmp_path, REDIS_URL, f"  cache_prefix: '{prefix}'\n")

    def total() -> int:
        stats = runner.invoke(app, ["stats", "--json", "--config", str(config)])
        assert stats.exit_code == 0, stats.output
        return int(json.loads(stats.stdout)["total_count"])

    try:
        _session(tmp_path, n=2)
        assert total() == 2  # cached now
        _load_behind_the_back(tmp_path, 3)
        assert total() == 2
        result = runner.invoke(app, ["migrate", "--rebuild-rollup", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "rebuilt from 5 item(s)" in result.stdout
        assert total() == 5
    finally:
        asyncio.run(delete_keys(prefix))


def test_migrate_rebuild_fails_when_the_cache_cannot_be_purged(tmp_path: Path) -> None:
    """Redis unreachable: the rollup is rebuilt, but the command says the cache is stale."""
    config = _cached_config(tmp_path, "redis://127.0.0.1:1/0")
    _session(tmp_path, n=2)
    result = runner.invoke(app, ["migrate", "--rebuild-rollup", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "rebuilt from 2 item(s)" in result.stdout
    assert "could not be purged" in result.stderr


@pytest.mark.postgres
def test_migrate_postgresql_uses_the_configured_schema(tmp_path: Path) -> None:
    """With store postgresql, migrate brings the configured schema to the latest version."""
    schema = new_schema_name()
    config = tmp_path / "app.yaml"
    config.write_text(
        f"ai_feedback:\n  store: postgresql\n  database_url: {POSTGRES_URL}\n"
        f"  database_schema: {schema}\n"
    )
    try:
        result = runner.invoke(app, ["migrate", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert f"schema version {POSTGRES_LATEST}" in result.stdout
        again = runner.invoke(app, ["migrate", "--rebuild-rollup", "--config", str(config)])
        assert again.exit_code == 0, again.output
        assert "statistics rollup rebuilt from 0 item(s)" in again.stdout
    finally:
        asyncio.run(drop_schema(schema))


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A store that cannot be opened fails in one line with status 1, not a traceback."""
    result = runner.invoke(
        app, ["stats", "--database-url", "postgresql://postgres@127.0.0.1:1/none"]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


def test_config_shows_sources_and_warns_about_one_underscore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Config names the source of each value and warns about AI_FEEDBACK_STORE."""
    yaml_file = tmp_path / "app.yaml"
    yaml_file.write_text(
        "ai_feedback:\n  batch_size: 64\n  database_url: postgresql://u:hunter2@db/x\n"
        "  store: postgresql\n"
    )
    monkeypatch.setenv("AI_FEEDBACK__WINDOW_HOURS", "12")
    monkeypatch.setenv("AI_FEEDBACK_STORE", "sqlite")
    result = runner.invoke(app, ["config", "--json", "--config", str(yaml_file)])
    assert result.exit_code == 0, result.output
    settings: dict[str, Any] = json.loads(result.stdout)["settings"]
    assert settings["batch_size"] == {"value": 64, "source": str(yaml_file)}
    assert settings["window_hours"] == {"value": 12.0, "source": "AI_FEEDBACK__WINDOW_HOURS"}
    assert settings["ack"] == {"value": "durable", "source": "default"}
    assert settings["database_url"]["value"] == "postgresql://u:****@db/x"
    assert "hunter2" not in result.output
    assert "AI_FEEDBACK_STORE is ignored: settings use two underscores" in result.stderr
    table = runner.invoke(app, ["config", "--config", str(yaml_file)])
    assert "AI_FEEDBACK__WINDOW_HOURS" in table.stdout


def test_demo_then_export_gives_training_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Demo records captured calls, so export sft right after it writes rows."""
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["demo"]).exit_code == 0
    result = runner.invoke(app, ["export", "sft"])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 4


def test_config_and_migrate_mask_every_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords in query strings, NATS tokens and key secrets are masked; token_max is not."""
    monkeypatch.setenv("AI_FEEDBACK__DATABASE_URL", "sqlite:///./x.db?password=TopSecretPW")
    monkeypatch.setenv("AI_FEEDBACK__SPOOL_URL", "nats://s3cr3tT0ken@127.0.0.1:4222?stream=X")
    monkeypatch.setenv("AI_FEEDBACK__CACHE_URL", "redis://:RedisPW@127.0.0.1:6379/0?password=Q")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    settings: dict[str, Any] = json.loads(result.stdout)["settings"]
    for secret in ("TopSecretPW", "s3cr3tT0ken", "RedisPW"):
        assert secret not in result.output
    assert settings["spool_url"]["value"] == "nats://****@127.0.0.1:4222?stream=X"
    assert settings["cache_url"]["value"] == "redis://:****@127.0.0.1:6379/0?password=****"
    assert settings["server.token_max_seconds"]["value"] == 604800.0


@pytest.mark.postgres
def test_migrate_does_not_print_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """The migrated store is named by a URL whose password is masked."""
    schema = new_schema_name()
    monkeypatch.setenv("AI_FEEDBACK__DATABASE_SCHEMA", schema)
    url = POSTGRES_URL.replace("postgres@", "postgres:hunter2@", 1)  # trust: any password
    try:
        result = runner.invoke(app, ["migrate", "--database-url", url])
        assert result.exit_code == 0, result.output
        assert "postgresql store at postgresql://postgres:****@" in result.stdout
        assert "hunter2" not in result.output
    finally:
        asyncio.run(drop_schema(schema))


async def test_an_import_stopped_by_sigterm_exits_143_not_0(tmp_path: Path) -> None:
    """A job stopped before it finished tells its scheduler so (services exit 0)."""
    lines = tmp_path / "many.jsonl"
    line = (
        '{"id":"i%d","feedback_type":"rating","value":3,"context":{},"metadata":{},'
        '"created_at":"2026-11-30T00:00:00+00:00"}\n'
    )
    lines.write_text("".join(line % n for n in range(300_000)))
    db = tmp_path / "f.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ai_feedback",
        "import",
        str(lines),
        "--database-url",
        f"sqlite:///{db}",
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            while not _stored(db):  # noqa: ASYNC110 - polls another process's database
                await asyncio.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(child.communicate(), 60)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 143, err.decode()
    assert "stopped by a signal before it finished" in err.decode()
    assert 0 < _stored(db) < 300_000


def _stored(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return int(conn.execute("SELECT count(*) FROM feedback").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize(
    "command", [["stats"], ["export", "raw"], ["delete", "--session-id", "s", "--yes"]]
)
def test_a_mistyped_sqlite_path_is_refused_not_created(tmp_path: Path, command: list[str]) -> None:
    """Reading or deleting commands name a missing database file; none is created."""
    url = f"sqlite:///{tmp_path}/typo.db"
    result = runner.invoke(app, [*command, "--database-url", url])
    assert result.exit_code == 2
    assert "'database_url': names no SQLite database" in result.output
    assert not (tmp_path / "typo.db").exists()
    imported = runner.invoke(app, ["import", str(_raw(tmp_path, [])), "--database-url", url])
    assert imported.exit_code == 0, imported.output  # an import creates its database
    assert (tmp_path / "typo.db").exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["delete", "--session-id", "", "--yes"], "'--session-id'"),
        (["delete", "--id", "x" * 300, "--yes"], "'--id'"),
        (
            [
                "export",
                "raw",
                "--since",
                "2026-11-02T00:00:00+00:00",
                "--until",
                "2026-11-01T00:00:00+00:00",
            ],
            "'--until'",
        ),
    ],
)
def test_filter_errors_name_the_option(tmp_path: Path, args: list[str], option: str) -> None:
    """A bad filter option is named as typed on the command line; exit 2."""
    result = runner.invoke(app, [*args, *_db(tmp_path)])
    assert result.exit_code == 2, result.output
    assert option in result.output


def test_ctrl_c_at_the_delete_question_exits_130_and_deletes_nothing(tmp_path: Path) -> None:
    """The question is asked outside the event loop: Ctrl-C there ends the command."""
    _session(tmp_path, 2, "gone")
    leader, follower = pty.openpty()
    child = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "ai_feedback", "delete", "--session-id", "gone", *_db(tmp_path)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"Delete 2 item(s)" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                seen += os.read(leader, 1024)
        assert b"Delete 2 item(s)" in seen, seen
        # The prompt is written just before the read starts: a signal in between is only
        # seen at the next key press (CPython's input()), which no user can tell apart.
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 130
    finally:
        child.kill()
        child.wait()
        os.close(leader)
    stats = json.loads(runner.invoke(app, ["stats", "--json", *_db(tmp_path)]).stdout)
    assert stats["total_count"] == 2
