"""
`FeedbackConfig`: settings from Python, environment variables and ``application.yaml``.

Precedence, highest first: arguments given in Python, ``AI_FEEDBACK__<KEY>``,
``LEX_AI_FEEDBACK__<KEY>`` (the seed-era prefix), the ``ai_feedback:`` section of the
YAML file (``./application.yaml`` unless another path is given), the defaults.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ai_feedback._server_settings import ApiKeyEntry, ServerSettings, refuse_booleans
from ai_feedback._urls import host_problem, masked_url
from ai_feedback._validation import MAX_PAYLOAD_CHARS, MAX_TEXT_LENGTH, MAX_WINDOW_HOURS, Limits
from ai_feedback.exceptions import FeedbackConfigurationError
from ai_feedback.stores.memory import DEFAULT_MAX_ITEMS

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIXES",
    "MAX_WINDOW_HOURS",
    "AckMode",
    "ConfigValue",
    "FeedbackConfig",
    "StoreKind",
    "config_report",
    "ignored_variables",
]

ENV_PREFIXES = ("AI_FEEDBACK__", "LEX_AI_FEEDBACK__")
DEFAULT_CONFIG_PATH = Path("application.yaml")
YAML_SECTION = "ai_feedback"
DEFAULT_SQLITE_URL = "sqlite:///./ai_feedback.db"

StoreKind = Literal["memory", "sqlite", "postgresql"]
"""The store backends that ``store`` can name."""
AckMode = Literal["durable", "queued"]
"""When a submission returns: once the item is on disk (``durable``), or once it is
queued in memory (``queued``)."""

_yaml_path: ContextVar[Path | None] = ContextVar("ai_feedback_yaml_path", default=None)


class FeedbackConfig(BaseSettings):
    """
    Settings of the feedback module.

    Constructing it reads the environment and ``./application.yaml``; arguments given
    here win over both. Unknown keys and wrongly typed values raise
    `FeedbackConfigurationError` naming the key and where it came from.

    Args:
        enabled: When False, submissions are validated and then dropped (a no-op).
        async_processing: Process and store items in the background.
        ack: With async processing, when a submission returns: ``durable`` (the
            default) once the item is on disk in the spool (or the store), ``queued``
            once it is in an in-memory queue (faster, lost if the process dies).
        spool_url: Where accepted items wait for the writer when ``ack`` is
            ``durable``: ``sqlite:///path`` (default: a file next to an SQLite store,
            or ``./ai_feedback-<hash>.spool``) or ``nats://host:4222`` (JetStream,
            shared by many processes).
        spool_max_items: Most items the durable spool holds before submitters wait.
        backpressure_wait_ms: How long a submitter waits for room in a full spool or
            queue before `FeedbackOverloadedError`.
        run_writer: Drain the spool into the store in this process (turn off for
            processes that only publish to a ``nats://`` spool).
        shutdown_timeout_seconds: Longest the shutdown waits for the writer to drain;
            what is left stays in a durable spool for the next start.
        store_raw_payloads: Keep every payload exactly as received, for audit.
        store: ``memory`` (default), ``sqlite`` or ``postgresql``.
        database_url: ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db``.
        database_schema: PostgreSQL schema for the tables (the default search path if None).
        cache_url: ``redis://host:port/db`` to cache reads in Redis; no cache when None.
        cache_ttl_seconds: Lifetime of cached items and lists.
        cache_stats_ttl_seconds: Lifetime of cached aggregates and statistics.
        cache_prefix: Start of every Redis key; give each application its own.
        window_hours: Window of ``get_feedback_stats``.
        max_text_length: Longest accepted text, in characters.
        max_payload_chars: Longest accepted ``context`` / ``metadata``, serialized.
        memory_max_items: Most items the in-memory store holds before evicting the oldest.
        queue_max_size: Most items waiting for the background writer; submitters wait
            (back-pressure) when it is full.
        batch_size: Most items the background writer stores in one batch.
        batch_max_delay_ms: Longest the writer waits for a batch to fill.
        max_attempts: Store attempts per batch before its items are set aside as
            failed; None (the default) retries until the store accepts them.
        retry_backoff_ms: Wait before the first retry; doubles after each failure.
        retry_backoff_max_ms: Longest wait between retries.
        failures_max: Most failed items kept in ``FeedbackCollector.failures``.
        capture_max_entries: Most captured operations kept for joining to feedback.
        capture_max_age_seconds: How long a captured operation stays joinable.
        capture_max_chars: Longest captured input or output kept, serialized.
        retention_days: Delete items older than this many days (None keeps them all);
            the process that runs the writer removes them every
            ``retention_interval_seconds``, ``retention_batch_size`` at a time.
        retention_interval_seconds: How often retention runs.
        retention_batch_size: Most items one retention batch deletes (batches yield to
            ingest in between).
        server: The HTTP service's keys, tokens, CORS and limits (`ServerSettings`);
            environment variables reach it as ``AI_FEEDBACK__SERVER__<KEY>``.
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIXES[0],
        env_nested_delimiter="__",
        case_sensitive=False,
        validate_default=True,
    )

    enabled: bool = True
    async_processing: bool = True
    ack: AckMode = "durable"
    spool_url: str | None = None
    spool_max_items: int = Field(default=1_000_000, ge=1)
    backpressure_wait_ms: float = Field(default=5_000.0, ge=0, allow_inf_nan=False)
    run_writer: bool = True
    shutdown_timeout_seconds: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    store_raw_payloads: bool = False
    store: StoreKind = "memory"
    database_url: str | None = None
    database_schema: str | None = None
    cache_url: str | None = None
    cache_ttl_seconds: float = Field(default=60.0, ge=0.001, allow_inf_nan=False)
    cache_stats_ttl_seconds: float = Field(default=10.0, ge=0.001, allow_inf_nan=False)
    cache_prefix: str = Field(default="ai_feedback:", min_length=1)
    window_hours: float = Field(default=24.0, gt=0, le=MAX_WINDOW_HOURS, allow_inf_nan=False)
    max_text_length: int = Field(default=MAX_TEXT_LENGTH, ge=1)
    max_payload_chars: int = Field(default=MAX_PAYLOAD_CHARS, ge=2)
    memory_max_items: int = Field(default=DEFAULT_MAX_ITEMS, ge=1)
    queue_max_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=500, ge=1)
    batch_max_delay_ms: float = Field(default=50.0, ge=0, allow_inf_nan=False)
    max_attempts: int | None = Field(default=None, ge=1)
    retry_backoff_ms: float = Field(default=100.0, ge=0, allow_inf_nan=False)
    retry_backoff_max_ms: float = Field(default=5_000.0, ge=0, allow_inf_nan=False)
    failures_max: int = Field(default=10_000, ge=1)
    capture_max_entries: int = Field(default=10_000, ge=1)
    capture_max_age_seconds: float = Field(default=3_600.0, gt=0, allow_inf_nan=False)
    capture_max_chars: int = Field(default=8_000, ge=100)
    retention_days: float | None = Field(default=None, gt=0, le=36_500, allow_inf_nan=False)
    retention_interval_seconds: float = Field(default=3_600.0, gt=0, allow_inf_nan=False)
    retention_batch_size: int = Field(default=1_000, ge=1)
    server: ServerSettings = Field(default_factory=ServerSettings)

    _explicit: frozenset[str] = PrivateAttr(default=frozenset())
    _source: Path | None = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:  # noqa: ANN401 - any setting's value
        """
        Build the configuration; ``values`` win over the environment and the YAML file.

        Raises:
            FeedbackConfigurationError: A key is unknown or a value has the wrong type.
        """
        _check_env_keys()
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _translate(exc, values) from None
        self._explicit = frozenset(values)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **values: Any) -> FeedbackConfig:  # noqa: ANN401
        """
        Build the configuration reading the YAML file at ``path`` instead of the default.

        Raises:
            FeedbackConfigurationError: The file cannot be read, or a key or value is invalid.
        """
        source = Path(path) if path is not None else None
        with _reading_yaml(source):
            config = cls(**values)
        config._source = source.resolve() if source is not None else None
        return config

    @property
    def source_path(self) -> Path | None:
        """
        The YAML file `load` was given (None: ``./application.yaml`` or none at all).
        """
        return self._source

    def explicit_values(self) -> dict[str, Any]:
        """
        Return the settings that were passed as arguments, not read from elsewhere.
        """
        return {name: getattr(self, name) for name in self._explicit}

    @property
    def limits(self) -> Limits:
        """
        The size limits, as the stores and the collector use them.
        """
        return Limits(self.max_text_length, self.max_payload_chars)

    @property
    def resolved_database_url(self) -> str | None:
        """
        ``database_url``, or the default SQLite file when ``store`` is ``sqlite``.
        """
        if self.database_url is None and self.store == "sqlite":
            return DEFAULT_SQLITE_URL
        return self.database_url

    @model_validator(mode="before")
    @classmethod
    def _store_of_the_url(cls, data: Any) -> Any:  # noqa: ANN401 - the settings given
        """
        Without ``store``, a ``database_url`` says which store it is.
        """
        url = data.get("database_url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.strip() or "store" in data:
            return data  # an empty database_url (a blank variable) is unset
        for store, prefixes in _URL_PREFIXES.items():
            if url.startswith(prefixes):
                return {**data, "store": store}
        msg = (
            "database_url must start with sqlite:/// or postgresql:// (or give store) "
            f"(got {masked_url(url)!r})"
        )
        raise ValueError(msg)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:  # noqa: ANN401
        return refuse_booleans(cls, value, info)

    @model_validator(mode="after")
    def _check_database_url(self) -> FeedbackConfig:
        url = self.database_url
        if self.cache_url is not None and not self.cache_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            msg = (
                "cache_url must start with redis://, rediss:// or unix:// "
                f"(got {masked_url(self.cache_url)!r})"
            )
            raise ValueError(msg)
        self._check_spool()
        for name in ("database_url", "cache_url", "spool_url"):
            value = getattr(self, name)
            problem = host_problem(value) if value is not None else ""
            if problem:
                msg = f"{name} {problem} (got {masked_url(value)!r})"
                raise ValueError(msg)
        if url is None and self.store == "postgresql":
            msg = "database_url is required when store is 'postgresql'"
            raise ValueError(msg)
        if url is None or self.store == "memory":
            return self
        if not url.startswith(_URL_PREFIXES[self.store]):
            msg = (
                f"must start with {' or '.join(_URL_PREFIXES[self.store])} when store is "
                f"{self.store!r} (got {masked_url(url)!r})"
            )
            raise ValueError(msg)
        return self

    def _check_spool(self) -> None:
        spool = self.spool_url
        if spool is not None and not spool.startswith(("sqlite:///", "nats://", "tls://")):
            msg = (
                "spool_url must start with sqlite:///, nats:// or tls:// "
                f"(got {masked_url(spool)!r})"
            )
            raise ValueError(msg)
        if spool is not None and self.ack == "queued":
            msg = "spool_url is set but ack is 'queued', which keeps items in memory only"
            raise ValueError(msg)
        if not self.run_writer and not (spool or "").startswith(("nats://", "tls://")):
            msg = (
                "run_writer is false but nothing else drains a local spool; "
                "use a nats:// spool_url with writer processes"
            )
            raise ValueError(msg)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env support
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """
        Order the sources: arguments, both env prefixes, then the YAML section.
        """
        legacy_env = EnvSettingsSource(settings_cls, env_prefix=ENV_PREFIXES[1])
        return (init_settings, env_settings, legacy_env, _YamlSection(settings_cls))


class _YamlSection(PydanticBaseSettingsSource):
    """
    The ``ai_feedback:`` section of the YAML file; a missing file is an empty section.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = _yaml_path.get() or DEFAULT_CONFIG_PATH
        self.data = read_yaml_section(self.path, required=_yaml_path.get() is not None)

    def get_field_value(
        self,
        field: FieldInfo,  # noqa: ARG002 - the base class's signature
        field_name: str,
    ) -> tuple[Any, str, bool]:
        """
        Return the YAML value of one field.
        """
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        """
        Return every key of the section, unknown ones included so that they are reported.
        """
        return dict(self.data)


def read_yaml_section(path: Path, *, required: bool) -> dict[str, Any]:
    """
    Return the ``ai_feedback`` mapping of the YAML file at ``path``.

    Raises:
        FeedbackConfigurationError: The file is missing (when ``required``), unreadable,
            not YAML, or the section is not a mapping.
    """
    if not path.exists():
        if required:
            raise FeedbackConfigurationError(str(path), "the configuration file does not exist")
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FeedbackConfigurationError(str(path), f"cannot be read as YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise FeedbackConfigurationError(str(path), "must contain a mapping at the top level")
    section = document.get(YAML_SECTION)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise FeedbackConfigurationError(
            f"{YAML_SECTION} (in {path})", "must be a mapping of settings"
        )
    return section


@contextmanager
def _reading_yaml(path: Path | None) -> Iterator[None]:
    token = _yaml_path.set(path)
    try:
        yield
    finally:
        _yaml_path.reset(token)


def _check_env_keys() -> None:
    known = FeedbackConfig.model_fields
    for name in os.environ:
        upper = name.upper()
        for prefix in ENV_PREFIXES:
            if upper.startswith(prefix):
                key = upper.removeprefix(prefix).lower()
                head, _, nested = key.partition("__")
                if head == "server" and nested:
                    if nested not in ServerSettings.model_fields:
                        known_server = ", ".join(ServerSettings.model_fields)
                        msg = f"is not a server setting (known: {known_server})"
                        raise FeedbackConfigurationError(name, msg)
                elif key not in known:
                    raise FeedbackConfigurationError(name, _unknown_key_hint(key))


def _unknown_key_hint(key: str, section: str = "ai_feedback") -> str:
    fields = FeedbackConfig.model_fields if section == "ai_feedback" else _SECTIONS[section]
    close = difflib.get_close_matches(key, fields, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(fields)
    return f"is not a setting of {section} (known: {known}){hint}"


_URL_PREFIXES = {"sqlite": ("sqlite:///",), "postgresql": ("postgresql://", "postgres://")}
"""How each database store's URL starts."""

_SECTIONS = {"server": ServerSettings.model_fields, "server.api_keys": ApiKeyEntry.model_fields}
"""The nested sections, whose keys a misspelling is compared with."""


def _source_of(key: str, explicit: dict[str, Any]) -> str:
    if key in explicit:
        return f"FeedbackConfig({key}=...)"
    for prefix in ENV_PREFIXES:
        for name in os.environ:
            if name.upper() == prefix + key.upper():
                return name
    path = _yaml_path.get() or DEFAULT_CONFIG_PATH
    return f"{YAML_SECTION}.{key} (in {path})"


def _translate(exc: ValidationError, explicit: dict[str, Any]) -> FeedbackConfigurationError:
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else "ai_feedback"
    if error["type"] == "extra_forbidden":
        path = [str(part) for part in error["loc"]]
        section = ".".join(p for p in path[:-1] if not p.isdigit())  # server.api_keys.0.x
        if section in _SECTIONS:  # name the inner key and what it may be
            inner = ".".join(path[1:])
            rule = f"{inner} {_unknown_key_hint(path[-1], section)}"
            return FeedbackConfigurationError(_source_of(key, explicit), rule)
        return FeedbackConfigurationError(_source_of(key, explicit), _unknown_key_hint(key))
    if not error["loc"]:
        problem = error["msg"].removeprefix("Value error, ")
        key = next(
            (k for k in ("cache_url", "spool_url", "run_writer") if problem.startswith(k)),
            "database_url",
        )
        return FeedbackConfigurationError(key, problem.removeprefix(f"{key} "))
    rule = error["msg"].removeprefix("Value error, ")
    nested = ".".join(str(part) for part in error["loc"][1:])  # a nested setting: server.x
    rule = f"{nested} {rule}" if nested else rule
    return FeedbackConfigurationError(_source_of(key, explicit), f"{rule} (got {error['input']!r})")


class ConfigValue(NamedTuple):
    """
    One effective setting and where its value came from.
    """

    key: str
    value: Any
    source: str


_SECRET_WORDS = ("secret", "password", "token")
_INTERNAL_VARIABLES = frozenset(
    {"AI_FEEDBACK_CONFIG_FILE", "AI_FEEDBACK_INSECURE_NO_AUTH", "AI_FEEDBACK_RUN_TOKEN_SECRET"}
)


def config_report(path: str | os.PathLike[str] | None = None, **values: Any) -> list[ConfigValue]:  # noqa: ANN401
    """
    Return every effective setting, secrets masked, with the source that set it.

    Sources: ``argument``, the environment variable's name, ``<file>`` for the YAML
    section, or ``default``.

    Raises:
        FeedbackConfigurationError: As `FeedbackConfig.load`.
    """
    config = FeedbackConfig.load(path, **values)
    yaml_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    section = read_yaml_section(yaml_path, required=path is not None)
    report = []
    for key in FeedbackConfig.model_fields:
        if key == "server":
            nested_yaml = section.get("server")
            server_yaml: dict[str, Any] = nested_yaml if isinstance(nested_yaml, dict) else {}
            for nested in ServerSettings.model_fields:
                value = getattr(config.server, nested)
                source = _origin(
                    f"server__{nested}", nested in (values.get("server") or {}), server_yaml, nested
                )
                report.append(ConfigValue(f"server.{nested}", _shown(nested, value), source))
            continue
        source = _origin(key, key in values, section, key)
        report.append(ConfigValue(key, _shown(key, getattr(config, key)), source))
    return [
        ConfigValue(v.key, v.value, str(yaml_path) if v.source == "yaml" else v.source)
        for v in report
    ]


def ignored_variables() -> list[tuple[str, str]]:
    """
    Return environment variables that look like settings but are not read, and why.

    ``AI_FEEDBACK_STORE`` (one underscore) is the common mistake: settings are read from
    ``AI_FEEDBACK__STORE``.
    """
    ignored = []
    for name in sorted(os.environ):
        upper = name.upper()
        if upper in _INTERNAL_VARIABLES or upper.startswith(ENV_PREFIXES):
            continue
        for prefix in ENV_PREFIXES:
            single = prefix[:-1]
            if upper.startswith(single):
                key = upper.removeprefix(single).lower()
                meant = f"{prefix}{key.upper()}"
                hint = (
                    f"is ignored: settings use two underscores ({meant})"
                    if key in FeedbackConfig.model_fields
                    else f"is ignored: not a setting ({prefix}<KEY> sets a setting)"
                )
                ignored.append((name, hint))
                break
    return ignored


def _origin(env_key: str, explicit: bool, section: dict[str, Any], key: str) -> str:
    if explicit:
        return "argument"
    for prefix in ENV_PREFIXES:
        for name in os.environ:
            if name.upper() == prefix + env_key.upper():
                return name
    return "yaml" if key in section else "default"


def _shown(key: str, value: Any) -> Any:  # noqa: ANN401 - any setting's value
    if value is None:
        return None
    if key.endswith(_SECRET_WORDS):  # token_secret, not token_max_seconds
        return "****"
    if key in ("database_url", "cache_url", "spool_url") and isinstance(value, str):
        return masked_url(value)
    if key == "api_keys":
        return [f"{entry.id} ({entry.project}: {', '.join(entry.scopes)})" for entry in value]
    return value
