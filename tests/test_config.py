"""Tests of FeedbackConfig: sources, precedence and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_feedback import FeedbackConfig, FeedbackConfigurationError, Limits


def _yaml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults() -> None:
    """Without sources the documented defaults apply."""
    config = FeedbackConfig()
    assert (config.enabled, config.async_processing, config.store_raw_payloads) == (
        True,
        True,
        False,
    )
    assert config.store == "memory"
    assert config.database_url is None
    assert config.window_hours == 24
    assert config.limits == Limits(10_000, 50_000)
    assert config.explicit_values() == {}


def test_yaml_section_is_read_from_the_working_directory() -> None:
    """./application.yaml's ai_feedback section configures the defaults."""
    _yaml(
        Path("application.yaml"), "ai_feedback:\n  enabled: false\n  window_hours: 12\nother: 1\n"
    )
    config = FeedbackConfig()
    assert config.enabled is False
    assert config.window_hours == 12


def test_precedence_python_over_env_over_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit Python > AI_FEEDBACK__ > LEX_AI_FEEDBACK__ > YAML > defaults."""
    _yaml(
        Path("application.yaml"),
        "ai_feedback:\n  window_hours: 1\n  max_text_length: 11\n  memory_max_items: 12\n"
        "  max_payload_chars: 13\n",
    )
    monkeypatch.setenv("LEX_AI_FEEDBACK__WINDOW_HOURS", "2")
    monkeypatch.setenv("LEX_AI_FEEDBACK__MAX_TEXT_LENGTH", "21")
    monkeypatch.setenv("LEX_AI_FEEDBACK__MEMORY_MAX_ITEMS", "22")
    monkeypatch.setenv("AI_FEEDBACK__WINDOW_HOURS", "3")
    monkeypatch.setenv("ai_feedback__max_text_length", "31")
    config = FeedbackConfig(window_hours=4)
    assert config.window_hours == 4  # Python
    assert config.max_text_length == 31  # new prefix, any case
    assert config.memory_max_items == 22  # seed-era prefix
    assert config.max_payload_chars == 13  # YAML
    assert config.explicit_values() == {"window_hours": 4}


def test_load_reads_another_file(tmp_path: Path) -> None:
    """FeedbackConfig.load(path) reads that file; explicit values still win."""
    path = _yaml(
        tmp_path / "prod.yaml", "ai_feedback:\n  store_raw_payloads: true\n  enabled: false\n"
    )
    config = FeedbackConfig.load(path, enabled=True)
    assert config.store_raw_payloads is True
    assert config.enabled is True


def test_load_of_a_missing_file_is_an_error(tmp_path: Path) -> None:
    """A path given explicitly must exist."""
    with pytest.raises(FeedbackConfigurationError, match="does not exist"):
        FeedbackConfig.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("ai_feedback:\n  enabeld: true\n", "ai_feedback.enabeld", "did you mean 'enabled'"),
        ("ai_feedback:\n  enabled: maybe\n", "ai_feedback.enabled", "valid boolean"),
        ("ai_feedback:\n  window_hours: -1\n", "ai_feedback.window_hours", "greater than 0"),
        ("ai_feedback:\n  store: mongodb\n", "ai_feedback.store", "'memory', 'sqlite' or"),
        ("ai_feedback: [1, 2]\n", "ai_feedback", "must be a mapping"),
        ("- just\n- a list\n", "application.yaml", "mapping at the top level"),
        ("ai_feedback: {enabled: true\n", "application.yaml", "cannot be read as YAML"),
        ("ai_feedback:\n  retention_days: yes\n", "ai_feedback.retention_days", "not true"),
        ("ai_feedback:\n  batch_size: true\n", "ai_feedback.batch_size", "not true or false"),
        (
            "ai_feedback:\n  server:\n    max_body_bytes: on\n",
            "ai_feedback.server",
            "max_body_bytes must be a number",
        ),
        (
            "ai_feedback:\n  server:\n    api_kyes: []\n",
            "ai_feedback.server",
            "api_kyes is not a setting of server (known: api_keys, ",
        ),
        (
            (
                "ai_feedback:\n  server:\n    api_keys:\n"
                f"      - {{id: a, project: p, secret_sha256: '{'0' * 64}', scops: [read]}}\n"
            ),
            "ai_feedback.server",
            "api_keys.0.scops is not a setting of server.api_keys (known: id, ",
        ),
        ("ai_feedback:\n  database_url: mysql://h/db\n", "database_url", "or give store"),
    ],
)
def test_bad_yaml_names_the_key(body: str, key: str, problem: str) -> None:
    """A misspelled key, a wrong type or a malformed file is reported with its key."""
    _yaml(Path("application.yaml"), body)
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig()
    assert key in info.value.key
    assert problem in str(info.value)


def test_empty_yaml_and_empty_section_give_defaults() -> None:
    """An empty file or an empty section configures nothing."""
    _yaml(Path("application.yaml"), "")
    assert FeedbackConfig().enabled is True
    _yaml(Path("application.yaml"), "ai_feedback:\n")
    assert FeedbackConfig().enabled is True


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("AI_FEEDBACK__ENABLED", "perhaps", "valid boolean"),
        ("AI_FEEDBACK__ENABELD", "true", "did you mean 'enabled'"),
        ("LEX_AI_FEEDBACK__STORE_RAW_PAYLOAD", "true", "did you mean 'store_raw_payloads'"),
        ("AI_FEEDBACK__MAX_TEXT_LENGTH", "0", "greater than or equal to 1"),
    ],
)
def test_bad_env_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    """A wrongly typed or unknown environment variable is named in the error."""
    monkeypatch.setenv(name, value)
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig()
    assert info.value.key == name
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "key", "problem"),
    [
        ({"enable": True}, "FeedbackConfig(enable=...)", "did you mean 'enabled'"),
        ({"window_hours": "soon"}, "FeedbackConfig(window_hours=...)", "valid number"),
        ({"window_hours": float("inf")}, "FeedbackConfig(window_hours=...)", "finite"),
        ({"memory_max_items": 0}, "FeedbackConfig(memory_max_items=...)", "greater than"),
        ({"store": "sqlite", "database_url": "postgresql://x/db"}, "database_url", "sqlite:///"),
        (
            {"store": "postgresql", "database_url": "sqlite:///x.db"},
            "database_url",
            "postgresql://",
        ),
    ],
)
def test_bad_python_values_name_the_key(kwargs: dict[str, object], key: str, problem: str) -> None:
    """Arguments with a wrong name, type or value raise FeedbackConfigurationError."""
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig(**kwargs)
    assert info.value.key == key
    assert problem in str(info.value)


def test_a_database_url_without_a_store_chooses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """database_url alone selects its store; an explicit store still wins (and is checked)."""
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig(database_url="mysql://u:s3cret@h/db")
    assert (info.value.key, "s3cret" in str(info.value)) == ("database_url", False)
    monkeypatch.setenv("AI_FEEDBACK__DATABASE_URL", "")  # a blank variable is unset
    assert FeedbackConfig().store == "memory"
    monkeypatch.delenv("AI_FEEDBACK__DATABASE_URL")
    _yaml(Path("application.yaml"), "ai_feedback:\n  database_url: sqlite:///./x.db\n")
    assert FeedbackConfig().store == "sqlite"
    assert FeedbackConfig(database_url="postgresql://h/db").store == "postgresql"
    assert FeedbackConfig(database_url="postgres://h/db").store == "postgresql"
    assert FeedbackConfig(store="memory", database_url="sqlite:///y.db").store == "memory"


def test_database_url_defaults_for_sqlite() -> None:
    """store=sqlite without a URL uses ./ai_feedback.db; memory ignores the URL."""
    assert FeedbackConfig(store="sqlite").resolved_database_url == "sqlite:///./ai_feedback.db"
    assert FeedbackConfig(store="memory", database_url="anything").store == "memory"
    url = "postgresql://postgres@127.0.0.1:5432/test"
    assert FeedbackConfig(store="postgresql", database_url=url).resolved_database_url == url


def test_config_is_frozen() -> None:
    """A configuration cannot be changed after it is built."""
    config = FeedbackConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.enabled = False


def test_durability_defaults() -> None:
    """Durable acknowledgement is the default; retries go on until the store accepts."""
    config = FeedbackConfig()
    assert config.ack == "durable"
    assert config.spool_url is None
    assert config.max_attempts is None
    assert config.run_writer is True
    assert config.spool_max_items == 1_000_000
    assert config.shutdown_timeout_seconds == 20


@pytest.mark.parametrize(
    ("values", "key", "needle"),
    [
        ({"ack": "eventually"}, "ack", "'durable' or 'queued'"),
        ({"spool_url": "redis://x"}, "spool_url", "must start with sqlite:///, nats://"),
        ({"ack": "queued", "spool_url": "sqlite:///s"}, "spool_url", "memory only"),
        ({"run_writer": False}, "run_writer", "nothing else drains"),
        ({"spool_max_items": 0}, "spool_max_items", "greater than or equal to 1"),
        ({"backpressure_wait_ms": -1}, "backpressure_wait_ms", "greater than or equal to 0"),
        ({"max_attempts": 0}, "max_attempts", "greater than or equal to 1"),
        ({"window_hours": 2_000_000}, "window_hours", "less than or equal to 1000000"),
        ({"window_hours": float("inf")}, "window_hours", "finite"),
        ({"cache_stats_ttl_seconds": 0}, "cache_stats_ttl_seconds", "greater than or equal"),
        ({"cache_ttl_seconds": 0.0005}, "cache_ttl_seconds", "greater than or equal to 0.001"),
    ],
)
def test_bad_durability_settings_name_the_key(
    values: dict[str, object], key: str, needle: str
) -> None:
    """Each bad durability setting raises FeedbackConfigurationError naming the key."""
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig(**values)
    assert key in info.value.key
    assert needle in str(info.value)


def test_a_nats_spool_may_leave_writing_to_other_processes() -> None:
    """run_writer false is allowed with a nats:// or tls:// spool (writer processes drain it)."""
    for url in ("nats://127.0.0.1:4222", "tls://nats.example:4222"):
        assert FeedbackConfig(spool_url=url, run_writer=False).run_writer is False


@pytest.mark.parametrize(
    ("key", "url", "problem"),
    [
        ("database_url", "postgresql://u:pw@h:notaport/db", "port that is not a number"),
        ("database_url", "postgresql://u:pw@[::1/db", "host that is not host:port"),
        ("database_url", "postgresql://u:pw@h:99999/db", "from 1 to 65535"),
        ("database_url", "postgresql://h1:5432,h2:x/db", "('x')"),
        ("cache_url", "redis://:pw@h:port/0", "port that is not a number"),
        ("spool_url", "nats://tok@h:4222:1?stream=S", "('4222:1')"),
    ],
)
def test_malformed_hosts_and_ports_are_named_without_the_password(
    key: str, url: str, problem: str
) -> None:
    """A URL whose host or port cannot be parsed is a configuration error, not a traceback."""
    with pytest.raises(FeedbackConfigurationError) as info:
        FeedbackConfig(**{key: url})
    assert info.value.key == key
    assert problem in str(info.value)
    assert "pw" not in str(info.value)
    assert "tok@" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@[::1]:5432/db",
        "postgresql://h1:5432,h2:5433/db",
        "postgresql:///db?host=/var/run/postgresql",
        "postgresql://h:/db",
        "postgresql://u:p:w@h/db",
    ],
)
def test_wellformed_postgresql_urls_are_kept(url: str) -> None:
    """IPv6, host lists, sockets and an empty (default) port are accepted as written."""
    assert FeedbackConfig(database_url=url).database_url == url
