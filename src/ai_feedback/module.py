"""
`FeedbackModule`: wires the configuration, store and collector into an `Application`.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ai_feedback.app import Application
from ai_feedback.capture import CaptureStore
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.events import EventBus
from ai_feedback.exceptions import FeedbackConfigurationError, FeedbackValidationError
from ai_feedback.pipeline import Pipeline, ProcessorRegistry
from ai_feedback.protocols import FeedbackProtocol, FeedbackStoreProtocol
from ai_feedback.stores.consistent import ReadYourWritesStore
from ai_feedback.stores.memory import MemoryFeedbackStore

__all__ = ["FeedbackModule", "Prepare"]

Prepare = Callable[[FeedbackCollector], "Awaitable[None] | None"]
"""A sync or async callable given the collector before its writer starts."""


@dataclass(frozen=True, slots=True)
class FeedbackModule:
    """
    A module descriptor for `Application`; build it with `configure` or `stub`.

    At boot it registers `FeedbackConfig`, `FeedbackStoreProtocol` (a read-your-writes
    view when async processing is on) and the store's own class, `FeedbackProtocol` and
    `FeedbackCollector`, `Pipeline`, `ProcessorRegistry`, `EventBus` and `CaptureStore`,
    then, once every module of the application is set up, calls ``prepare`` (if given)
    with the collector and starts the collector's writer, which replays what an earlier
    run left in the spool: steps and processors registered by ``prepare`` or by a module
    set up in the meantime apply to the replayed items too. At shutdown it drains the
    writer (within ``shutdown_timeout_seconds``), then closes the store.

    A store bound beforehand with ``app.container.bind(FeedbackStoreProtocol, store)`` is
    used instead of the configured one (and not closed: it belongs to whoever bound it).
    """

    config: FeedbackConfig | None = None
    is_stub: bool = False
    prepare: Prepare | None = None

    @classmethod
    def configure(
        cls, config: FeedbackConfig | None = None, *, prepare: Prepare | None = None
    ) -> FeedbackModule:
        """
        Return the module for ``config``.

        At boot, the arguments given to ``config`` win over environment variables, which
        win over the application's YAML file, which wins over the defaults. ``prepare``
        receives the collector before its writer starts: register steps and processors
        there to have them apply to every item, replayed ones included.
        """
        return cls(_check_config(config), prepare=_check_prepare(prepare))

    @classmethod
    def stub(
        cls, config: FeedbackConfig | None = None, *, prepare: Prepare | None = None
    ) -> FeedbackModule:
        """
        Return a module for unit tests: in memory, hermetic, synchronous.

        It always uses the in-memory store, reads no environment variables or YAML file
        at boot, and processes in the caller's task unless ``config`` sets
        ``async_processing`` explicitly. ``prepare`` is as for `configure`.
        """
        return cls(_check_config(config), is_stub=True, prepare=_check_prepare(prepare))

    async def setup(self, app: Application) -> None:
        """
        Register the feedback services on ``app.container``.
        """
        config = self._effective_config(app)
        container = app.container
        bound = container.bound(FeedbackStoreProtocol)
        if bound is not None and not self.is_stub:
            store = bound
            container.unbind(FeedbackStoreProtocol)
        else:
            store = await open_store(config)
            # Hooks run last-registered-first: the writer drains before the store closes.
            app.on_shutdown(store.aclose)  # type: ignore[attr-defined]
        collector = FeedbackCollector(store, config)
        container.register_value(FeedbackConfig, config)
        container.register_value(type(store), store)
        view: FeedbackStoreProtocol = (
            ReadYourWritesStore(store, collector.flush_for_read)
            if config.async_processing
            else store
        )
        container.register_value(FeedbackStoreProtocol, view)
        container.register_value(FeedbackCollector, collector)
        container.register_value(FeedbackProtocol, collector)
        container.register_value(Pipeline, collector.pipeline)
        container.register_value(ProcessorRegistry, collector.pipeline.processors)
        container.register_value(EventBus, collector.events)
        container.register_value(CaptureStore, collector.captures)
        app.on_shutdown(collector.aclose)
        prepare = self.prepare

        async def start() -> None:
            if prepare is not None:
                done = prepare(collector)
                if inspect.isawaitable(done):
                    await done
            await collector.start()

        app.on_start(start)

    def _effective_config(self, app: Application) -> FeedbackConfig:
        explicit = self.config.explicit_values() if self.config is not None else {}
        if self.is_stub:
            # Explicit values were validated when the caller built them.
            return FeedbackConfig.model_construct(
                **{"async_processing": False, **explicit, "store": "memory"}
            )
        # The application's file wins; else the file this module's settings came from.
        path = app.config_path
        if path is None and self.config is not None:
            path = self.config.source_path
        return FeedbackConfig.load(path, **explicit)


async def open_store(config: FeedbackConfig) -> FeedbackStoreProtocol:
    """
    Open the store ``config`` selects, wrapped in the Redis cache when ``cache_url`` is set.

    Raises:
        FeedbackConfigurationError: The store's optional dependency is not installed.
        FeedbackStorageError: The database cannot be opened.
    """
    if config.cache_url is not None:
        require_extra("redis", "redis")  # before anything is opened (or migrated)
    store: FeedbackStoreProtocol
    if config.store == "memory":
        store = MemoryFeedbackStore(max_items=config.memory_max_items, limits=config.limits)
    elif config.store == "sqlite":
        from ai_feedback.stores.sqlite import SQLiteFeedbackStore  # noqa: PLC0415 - optional

        url = config.resolved_database_url or ""
        store = await SQLiteFeedbackStore.open(url, limits=config.limits)
    else:
        require_extra("asyncpg", "postgresql")
        from ai_feedback.stores.postgres import PostgresFeedbackStore  # noqa: PLC0415

        store = await PostgresFeedbackStore.open(
            config.database_url or "", limits=config.limits, schema=config.database_schema
        )
    if config.cache_url is None:
        return store
    from ai_feedback.stores.cached import CachedFeedbackStore  # noqa: PLC0415 - optional

    try:
        return await CachedFeedbackStore.open(
            store,
            config.cache_url,
            ttl_seconds=config.cache_ttl_seconds,
            stats_ttl_seconds=config.cache_stats_ttl_seconds,
            prefix=config.cache_prefix,
            owns_store=True,
            limits=config.limits,
        )
    except BaseException:
        await _close(store)
        raise


async def _close(store: object) -> None:
    """
    Close ``store`` when it can be closed (every store of this package can).
    """
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()


def require_extra(module: str, extra: str) -> None:
    """
    Raise `FeedbackConfigurationError` when ``module`` (of the extra ``extra``) is missing.
    """
    if importlib.util.find_spec(module) is None:
        msg = f"needs the {module} package: pip install 'ai-feedback[{extra}]'"
        raise FeedbackConfigurationError("store", msg)


def _check_prepare(prepare: object) -> Prepare | None:
    if prepare is not None and not callable(prepare):
        raise FeedbackValidationError("prepare", "must be callable or None", prepare)
    return prepare


def _check_config(config: object) -> FeedbackConfig | None:
    if config is not None and not isinstance(config, FeedbackConfig):
        raise FeedbackValidationError("config", "must be a FeedbackConfig or None", config)
    return config
