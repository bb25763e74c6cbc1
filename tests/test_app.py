"""Tests of Application, its Container and FeedbackModule."""

from __future__ import annotations

import abc
import asyncio
import importlib.util
import logging
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from ai_feedback import (
    Application,
    Container,
    FeedbackCollector,
    FeedbackConfig,
    FeedbackConfigurationError,
    FeedbackError,
    FeedbackItem,
    FeedbackModule,
    FeedbackProtocol,
    FeedbackStoreProtocol,
    FeedbackType,
    FeedbackValidationError,
    MemoryFeedbackStore,
    ResolutionError,
)
from ai_feedback._models import Entry
from ai_feedback.capture import CaptureStore
from ai_feedback.events import EventBus
from ai_feedback.module import open_store
from ai_feedback.pipeline import Pipeline, ProcessorRegistry
from ai_feedback.spool.sqlite import SQLiteSpool
from ai_feedback.stores.cached import CachedFeedbackStore
from ai_feedback.stores.consistent import ReadYourWritesStore
from ai_feedback.stores.sqlite import SQLiteFeedbackStore
from tests.stores.backend_cached import REDIS_URL, delete_keys
from tests.stores.backend_postgresql import drop_schema


class Clock:
    """A dependency with no parameters."""


class Service:
    """Depends on the feedback protocol and on an autowirable class."""

    def __init__(self, feedback: FeedbackProtocol, clock: Clock, retries: int = 3) -> None:
        self.feedback = feedback
        self.clock = clock
        self.retries = retries


class NeedsString:
    """Has a parameter the container cannot provide."""

    def __init__(self, name: str) -> None:
        self.name = name


class Outer:
    """Depends on a class that cannot be built."""

    def __init__(self, inner: NeedsString) -> None:
        self.inner = inner


class OuterWithDefault:
    """A default must not hide a failure inside a buildable dependency."""

    def __init__(self, inner: NeedsString | None = None) -> None:
        self.inner = inner


class OuterWithBuildableDefault:
    """A registered/buildable type with a default is still resolved."""

    def __init__(self, inner: NeedsString = NeedsString("default")) -> None:  # noqa: B008
        self.inner = inner


class CycleA:
    """Half of a dependency cycle."""

    def __init__(self, b: CycleB) -> None:
        self.b = b


class CycleB:
    """The other half."""

    def __init__(self, a: CycleA) -> None:
        self.a = a


class Untyped:
    """A parameter without a hint."""

    def __init__(self, thing) -> None:  # type: ignore[no-untyped-def]
        self.thing = thing


class Abstract(abc.ABC):
    """Cannot be instantiated."""

    @abc.abstractmethod
    def run(self) -> None:
        """Run."""


class Exploding:
    """Its constructor raises."""

    def __init__(self) -> None:
        raise RuntimeError("kaboom")


class FakeFeedback:
    """A hand-rolled FeedbackProtocol for tests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.calls.append((trace_id, score))

    async def get_feedback_stats(
        self, model: str | None = None, provider: str | None = None
    ) -> dict[str, Any]:
        return {"total_count": len(self.calls), "average_rating": None, "by_type": {}}


async def test_boot_registers_the_feedback_services() -> None:
    """The module registers config, store, collector and protocol, all consistent."""
    async with Application.boot(modules=[FeedbackModule.configure()]) as app:
        assert app.is_running
        feedback = await app.container.resolve(FeedbackProtocol)
        collector = await app.container.resolve(FeedbackCollector)
        store = await app.container.resolve(FeedbackStoreProtocol)
        config = await app.container.resolve(FeedbackConfig)
        assert feedback is collector
        assert isinstance(store, ReadYourWritesStore)  # async processing is on by default
        assert store.inner is collector.store
        assert collector.config is config
        assert await app.container.resolve(MemoryFeedbackStore) is collector.store
        assert await app.container.resolve(Pipeline) is collector.pipeline
        assert await app.container.resolve(EventBus) is collector.events
        assert await app.container.resolve(CaptureStore) is collector.captures
        assert await app.container.resolve(ProcessorRegistry) is collector.pipeline.processors
    assert not app.is_running


async def test_add_module_then_async_with() -> None:
    """Application() + add_module() + async with works like boot()."""
    app = Application()
    assert app.add_module(FeedbackModule.configure(FeedbackConfig(window_hours=6))) is app
    assert "modules=1 stopped" in repr(app)
    async with app:
        assert (await app.container.resolve(FeedbackConfig)).window_hours == 6
        with pytest.raises(FeedbackValidationError, match="while the app is running"):
            app.add_module(FeedbackModule.configure())


def test_add_module_rejects_non_modules() -> None:
    """Only objects with an async setup(app) are modules."""
    with pytest.raises(FeedbackValidationError, match="'module'"):
        Application().add_module("feedback")  # type: ignore[arg-type]


async def test_autowiring_builds_plain_classes() -> None:
    """Plain classes are built from their type hints; defaults fill built-in types."""
    async with Application.boot(modules=[FeedbackModule.stub()]) as app:
        service = await app.container.resolve(Service)
        assert isinstance(service.feedback, FeedbackCollector)
        assert isinstance(service.clock, Clock)
        assert service.retries == 3
        other = await app.container.resolve(Service)
        assert other is not service
        assert other.feedback is service.feedback


async def test_bind_a_fake_to_a_protocol() -> None:
    """container.bind() puts a fake in place of the protocol, over the module's registration."""
    fake = FakeFeedback()
    app = Application(modules=[FeedbackModule.stub()])
    app.container.bind(FeedbackProtocol, fake)
    async with app:
        service = await app.container.resolve(Service)
        assert service.feedback is fake
        await service.feedback.submit_feedback("t", 1.0)
        assert fake.calls == [("t", 1.0)]
        app.container.unbind(FeedbackProtocol)
        assert isinstance(await app.container.resolve(FeedbackProtocol), FeedbackCollector)


async def test_bind_works_without_any_module() -> None:
    """A test can build a service from fakes alone."""
    container = Container()
    container.bind(FeedbackProtocol, FakeFeedback())
    assert isinstance((await container.resolve(Service)).feedback, FakeFeedback)
    assert "bound=1" in repr(container)


@pytest.mark.parametrize(
    ("tp", "needle"),
    [
        (FeedbackProtocol, "is a protocol and nothing provides it"),
        (Service, "parameter 'feedback: FeedbackProtocol' could not be resolved"),
        (NeedsString, "parameter 'name: str' could not be resolved"),
        (Outer, "NeedsString: parameter 'name: str'"),
        (CycleA, "cycle (CycleA -> CycleB -> CycleA)"),
        (Untyped, "parameter 'thing' has no type hint"),
        (Abstract, "it is abstract"),
        (Exploding, "its constructor raised RuntimeError('kaboom')"),
        (int, "built-in types are never built"),
        ("Service", "it is not a class"),
    ],
)
async def test_resolution_errors_name_the_type_and_why(tp: Any, needle: str) -> None:
    """A type that cannot be built raises ResolutionError naming it and the reason."""
    container = Container()
    with pytest.raises(ResolutionError) as info:
        await container.resolve(tp)
    assert needle in str(info.value)
    assert info.value.requested is tp


async def test_default_does_not_mask_a_nested_failure() -> None:
    """A union-typed parameter with a default is skipped; a buildable one is still resolved."""
    container = Container()
    assert (await container.resolve(OuterWithDefault)).inner is None
    with pytest.raises(ResolutionError, match="'name: str'"):
        await container.resolve(OuterWithBuildableDefault)
    container.register_value(NeedsString, NeedsString("registered"))
    assert (await container.resolve(OuterWithBuildableDefault)).inner.name == "registered"


async def test_factories_are_singletons_sync_or_async() -> None:
    """A registered factory runs once; async factories are awaited."""
    container = Container()
    calls: list[str] = []

    def make_clock() -> Clock:
        calls.append("sync")
        return Clock()

    async def make_string() -> NeedsString:
        calls.append("async")
        return NeedsString("x")

    container.register_factory(Clock, make_clock)
    container.register_factory(NeedsString, make_string)
    assert await container.resolve(Clock) is await container.resolve(Clock)
    assert (await container.resolve(NeedsString)).name == "x"
    await container.resolve(NeedsString)
    assert calls == ["sync", "async"]
    assert container.is_registered(Clock)


async def test_failing_factory_is_a_resolution_error() -> None:
    """A factory that raises surfaces as ResolutionError with the cause."""
    container = Container()

    def broken() -> Clock:
        raise OSError("disk")

    container.register_factory(Clock, broken)
    with pytest.raises(ResolutionError, match="factory raised OSError"):
        await container.resolve(Clock)
    with pytest.raises(FeedbackValidationError, match="'factory'"):
        container.register_factory(Clock, "not callable")  # type: ignore[arg-type]


async def test_boot_reads_application_yaml() -> None:
    """At boot the module reads ./application.yaml (explicit config still wins)."""
    Path("application.yaml").write_text(
        "ai_feedback:\n  enabled: false\n  window_hours: 2\n", encoding="utf-8"
    )
    module = FeedbackModule.configure(FeedbackConfig(window_hours=5))
    async with Application.boot(modules=[module]) as app:
        config = await app.container.resolve(FeedbackConfig)
        assert (config.enabled, config.window_hours) == (False, 5)


async def test_boot_with_a_config_path(tmp_path: Path) -> None:
    """Application.boot(config_path=...) reads that file instead."""
    path = tmp_path / "custom.yaml"
    path.write_text("ai_feedback:\n  window_hours: 7\n", encoding="utf-8")
    async with Application.boot(modules=[FeedbackModule.configure()], config_path=path) as app:
        assert app.config_path == path
        assert (await app.container.resolve(FeedbackConfig)).window_hours == 7


async def test_module_reads_the_file_its_settings_were_loaded_from(tmp_path: Path) -> None:
    """A module given FeedbackConfig.load(path) uses that file, not ./application.yaml."""
    Path("application.yaml").write_text(
        "ai_feedback:\n  store: sqlite\n  window_hours: 2\n", encoding="utf-8"
    )
    path = tmp_path / "service.yaml"
    path.write_text("ai_feedback:\n  store: memory\n  window_hours: 7\n", encoding="utf-8")
    config = FeedbackConfig.load(path, max_attempts=4)
    assert config.source_path == path
    async with Application.boot(modules=[FeedbackModule.configure(config)]) as app:
        effective = await app.container.resolve(FeedbackConfig)
        assert (effective.store, effective.window_hours, effective.max_attempts) == (
            "memory",
            7,
            4,
        )
        assert isinstance(await app.container.resolve(MemoryFeedbackStore), MemoryFeedbackStore)


async def test_stub_is_hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """stub() ignores YAML and env and always uses memory; explicit values are kept."""
    Path("application.yaml").write_text("ai_feedback:\n  store: sqlite\n", encoding="utf-8")
    monkeypatch.setenv("AI_FEEDBACK__ENABLED", "false")
    async with Application.boot(
        modules=[FeedbackModule.stub(FeedbackConfig(window_hours=3))]
    ) as app:
        config = await app.container.resolve(FeedbackConfig)
        assert (config.store, config.enabled, config.async_processing) == ("memory", True, False)
        assert config.window_hours == 3
        store = await app.container.resolve(FeedbackStoreProtocol)
        assert isinstance(store, MemoryFeedbackStore)


async def test_sqlite_store_survives_a_restart(tmp_path: Path) -> None:
    """store: sqlite keeps feedback across application restarts."""
    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{tmp_path / 'fb.db'}")
    for expected in (1, 2):
        async with Application.boot(modules=[FeedbackModule.configure(config)]) as app:
            feedback = await app.container.resolve(FeedbackProtocol)
            await feedback.submit_feedback(trace_id="t", score=4)
            assert (await feedback.get_feedback_stats())["total_count"] == expected


async def test_sqlite_default_file_is_in_the_working_directory() -> None:
    """store: sqlite without a URL writes ./ai_feedback.db."""
    async with Application.boot(
        modules=[FeedbackModule.configure(FeedbackConfig(store="sqlite"))]
    ) as app:
        await (await app.container.resolve(FeedbackProtocol)).submit_feedback("t", 1)
    assert Path("ai_feedback.db").exists()


@pytest.mark.postgres
@pytest.mark.redis
async def test_postgresql_store_with_the_redis_cache_from_yaml() -> None:
    """YAML can select PostgreSQL (in a schema) with the Redis cache in front."""
    schema = f"t_app_{uuid.uuid4().hex[:12]}"
    prefix = f"ai_feedback_test:{uuid.uuid4().hex}:"
    Path("application.yaml").write_text(
        "ai_feedback:\n"
        "  store: postgresql\n"
        "  database_url: postgresql://postgres@127.0.0.1:5432/test\n"
        f"  database_schema: {schema}\n"
        "  cache_url: redis://127.0.0.1:6379/0\n"
        f"  cache_prefix: '{prefix}'\n",
        encoding="utf-8",
    )
    try:
        async with Application.boot(modules=[FeedbackModule.configure()]) as app:
            store = await app.container.resolve(FeedbackStoreProtocol)
            assert "CachedFeedbackStore" in repr(store)
            feedback = await app.container.resolve(FeedbackProtocol)
            await feedback.submit_feedback("t", 5, metadata={"model": "m"})
            stats = await feedback.get_feedback_stats(model="m")
            assert (stats["total_count"], stats["average_rating"]) == (1, 5.0)
    finally:
        await drop_schema(schema)
        await delete_keys(prefix)


async def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without asyncpg installed, store: postgresql names the extra to install."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name)
    )
    config = FeedbackConfig(store="postgresql", database_url="postgresql://x@127.0.0.1/db")
    app = Application.boot(modules=[FeedbackModule.configure(config)])
    with pytest.raises(FeedbackConfigurationError, match=r"ai-feedback\[postgresql\]"):
        async with app:
            pass
    assert not app.is_running


async def test_missing_cache_extra_is_named_before_the_store_is_opened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without redis installed, cache_url names the extra, and no database is touched."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name)
    )
    db = tmp_path / "f.db"
    config = FeedbackConfig(
        store="sqlite", database_url=f"sqlite:///{db}", cache_url="redis://127.0.0.1:6379/0"
    )
    with pytest.raises(FeedbackConfigurationError, match=r"ai-feedback\[redis\]"):
        await open_store(config)
    assert not db.exists()


async def test_a_cache_that_cannot_open_leaves_no_store_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When the cache in front fails to open, open_store closes the store it opened."""
    opened: list[Any] = []

    async def refuse(store: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(store)
        raise FeedbackConfigurationError("cache_url", "refused for the test")

    monkeypatch.setattr(CachedFeedbackStore, "open", refuse)
    config = FeedbackConfig(
        store="sqlite", database_url=f"sqlite:///{tmp_path / 'f.db'}", cache_url=REDIS_URL
    )
    with pytest.raises(FeedbackConfigurationError, match="refused for the test"):
        await open_store(config)
    assert "closed" in repr(opened[0])


@pytest.mark.redis
async def test_the_cache_takes_its_lifetimes_from_the_configuration(tmp_path: Path) -> None:
    """cache_ttl_seconds and cache_stats_ttl_seconds reach the Redis cache in front."""
    config = FeedbackConfig(
        store="sqlite",
        database_url=f"sqlite:///{tmp_path / 'f.db'}",
        cache_url="redis://127.0.0.1:6379/0",
        cache_prefix=f"ai_feedback_test:{uuid.uuid4().hex}:",
        cache_ttl_seconds=30,
        cache_stats_ttl_seconds=2.5,
    )
    store: Any = await open_store(config)
    async with store:
        assert (store._ttl_ms, store._stats_ttl_ms) == (30_000, 2_500)


def test_module_rejects_a_non_config() -> None:
    """configure() and stub() take a FeedbackConfig or None."""
    with pytest.raises(FeedbackValidationError, match="'config'"):
        FeedbackModule.configure({"enabled": True})  # type: ignore[arg-type]
    with pytest.raises(FeedbackValidationError, match="'config'"):
        FeedbackModule.stub("x")  # type: ignore[arg-type]


async def test_failing_shutdown_hook_is_logged_and_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A shutdown hook that raises is logged; the remaining hooks still run."""
    ran: list[str] = []

    async def good() -> None:
        ran.append("good")

    async def bad() -> None:
        raise RuntimeError("hook failed")

    app = Application()
    app.on_shutdown(good)
    app.on_shutdown(bad)
    with caplog.at_level(logging.ERROR, logger="ai_feedback"):
        async with app:
            pass
    assert ran == ["good"]
    assert "Shutdown hook" in caplog.text


async def test_start_is_idempotent() -> None:
    """Starting twice sets the modules up once."""
    app = Application(modules=[FeedbackModule.stub()])
    await app.start()
    first = await app.container.resolve(FeedbackProtocol)
    await app.start()
    assert await app.container.resolve(FeedbackProtocol) is first
    await app.stop()


async def test_sigterm_drains_and_exits_143() -> None:
    """SIGTERM inside the block cancels it, runs the shutdown (the drain), then exits 143."""
    app = Application.boot(modules=[FeedbackModule.configure(FeedbackConfig(ack="queued"))])
    holder: list[FeedbackCollector] = []

    async def run() -> None:
        async with app:
            holder.append(await app.container.resolve(FeedbackCollector))
            await holder[0].collect_rating(5)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(10)  # cancelled by the signal

    with pytest.raises(SystemExit) as info:
        await run()
    [collector] = holder
    assert info.value.code == 128 + signal.SIGTERM
    assert app.stopped_by is signal.SIGTERM
    assert not app.is_running
    assert len(collector.store) == 1  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers removed


async def test_signal_handlers_are_only_installed_when_nobody_else_handles_them() -> None:
    """A handler someone else installed is left alone; handle_signals=False installs none."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        async with Application.boot(modules=[FeedbackModule.stub()]):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
    async with Application.boot(modules=[FeedbackModule.stub()], handle_signals=False):
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


async def _spool_left_by_a_crash(db: Path) -> FeedbackItem:
    """Leave one text item in the spool of the SQLite store at ``db``, as a crash would."""
    store = await SQLiteFeedbackStore.open(f"sqlite:///{db}")
    spool = SQLiteSpool(f"{db}-spool", identity=store.location or "")
    item = FeedbackItem(feedback_type=FeedbackType.TEXT, value="left behind")
    await spool.append(Entry(item, "text"))
    await spool.aclose()
    await store.aclose()
    return item


def _tag(item: FeedbackItem) -> FeedbackItem:
    return item.replace(metadata={**item.metadata, "tagged": True})


@pytest.mark.parametrize("is_async", [False, True], ids=["sync prepare", "async prepare"])
async def test_prepare_registers_steps_before_the_spool_is_replayed(
    tmp_path: Path, is_async: bool
) -> None:
    """Steps added by prepare= run on items a crashed run left in the spool."""
    db = tmp_path / "f.db"
    left = await _spool_left_by_a_crash(db)
    seen: list[FeedbackCollector] = []

    def prepare(collector: FeedbackCollector) -> None:
        seen.append(collector)
        collector.pipeline.add_step(_tag)

    async def prepare_async(collector: FeedbackCollector) -> None:
        await asyncio.sleep(0)
        prepare(collector)

    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{db}")
    module = FeedbackModule.configure(config, prepare=prepare_async if is_async else prepare)
    async with Application.boot(modules=[module]) as app:
        collector = await app.container.resolve(FeedbackCollector)
        assert seen == [collector]
        await collector.flush()
        store = await app.container.resolve(SQLiteFeedbackStore)
        stored = await store.get(left.id)
        assert stored is not None
        assert stored.metadata == {"tagged": True}


async def test_a_module_set_up_after_the_feedback_module_sees_replayed_items(
    tmp_path: Path,
) -> None:
    """The writer starts once every module is set up: a later module's step applies to replays."""
    db = tmp_path / "f.db"
    left = await _spool_left_by_a_crash(db)

    class Tagging:
        async def setup(self, app: Application) -> None:
            await asyncio.sleep(0.1)  # a module doing I/O while it sets up
            pipeline = await app.container.resolve(Pipeline)
            pipeline.add_step(_tag)

    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{db}")
    async with Application.boot(modules=[FeedbackModule.configure(config), Tagging()]) as app:
        collector = await app.container.resolve(FeedbackCollector)
        await collector.flush()
        store = await app.container.resolve(SQLiteFeedbackStore)
        stored = await store.get(left.id)
        assert stored is not None
        assert stored.metadata == {"tagged": True}


async def test_a_failing_prepare_stops_the_boot_and_closes_what_was_opened(tmp_path: Path) -> None:
    """Prepare raising: the error reaches the caller, the store is closed, nothing is started."""
    opened: list[FeedbackCollector] = []

    def prepare(collector: FeedbackCollector) -> None:
        opened.append(collector)
        msg = "cannot register"
        raise RuntimeError(msg)

    config = FeedbackConfig(store="sqlite", database_url=f"sqlite:///{tmp_path / 'f.db'}")
    app = Application.boot(modules=[FeedbackModule.configure(config, prepare=prepare)])
    with pytest.raises(RuntimeError, match="cannot register"):
        async with app:
            pytest.fail("the body must not run")
    assert not app.is_running
    [collector] = opened
    assert "closed" in repr(collector.store)
    with pytest.raises(FeedbackError, match="closed"):
        await collector.collect_rating(4)


def test_prepare_must_be_callable() -> None:
    """configure() and stub() name 'prepare' when it is not callable."""
    with pytest.raises(FeedbackValidationError, match="'prepare': must be callable or None"):
        FeedbackModule.configure(prepare="tag")  # type: ignore[arg-type]
    with pytest.raises(FeedbackValidationError, match="'prepare'"):
        FeedbackModule.stub(prepare=42)  # type: ignore[arg-type]


async def test_start_hooks_run_in_order_and_not_after_the_start() -> None:
    """on_start hooks run after every module's setup, first registered first; later ones fail."""
    ran: list[str] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        async def setup(self, app: Application) -> None:
            ran.append(f"setup {self.name}")

            async def started() -> None:
                ran.append(f"start {self.name}")

            app.on_start(started)

    async with Application.boot(modules=[Recording("a"), Recording("b")]) as app:
        assert ran == ["setup a", "setup b", "start a", "start b"]

        async def late() -> None:
            ran.append("late")

        with pytest.raises(FeedbackValidationError, match="'hook': cannot be added once"):
            app.on_start(late)
    assert "late" not in ran


async def test_boot_works_in_a_removed_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look for leftover spool files is a check: a removed directory does not stop a boot."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    async with Application.boot(modules=[FeedbackModule.stub()]) as app:
        feedback = await app.container.resolve(FeedbackCollector)
        assert await feedback.collect_rating(4)
