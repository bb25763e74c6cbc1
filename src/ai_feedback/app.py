"""
`Application` and its dependency container.

The container resolves, in this order: objects bound with `Container.bind` (tests use
this for fakes), objects and factories registered by modules, and finally plain classes
whose constructor parameters it can resolve from their type hints (autowiring). Bound
objects, registered objects and factory results are singletons; autowired classes are
built anew on each ``resolve``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import typing
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from ai_feedback.exceptions import FeedbackValidationError, ResolutionError

__all__ = ["Application", "Container", "Module"]

T = TypeVar("T")
_LOG = logging.getLogger("ai_feedback")

Factory = Callable[[], Any]
"""A zero-argument callable, sync or async, whose result becomes a singleton."""


@runtime_checkable
class Module(Protocol):
    """
    **Protocol:** a unit `Application` boots: it registers services in ``setup``.
    """

    async def setup(self, app: Application) -> None:
        """
        Register services on ``app.container`` and shutdown hooks with ``app.on_shutdown``.
        """
        ...


class Container:
    """
    Resolves services by type, building plain classes from their type hints.
    """

    def __init__(self) -> None:
        self._bound: dict[object, object] = {}
        self._values: dict[object, object] = {}
        self._factories: dict[object, Factory] = {}
        self._locks: dict[object, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return (
            f"<Container bound={len(self._bound)} "
            f"registered={len(self._values) + len(self._factories)}>"
        )

    def register_value(self, tp: object, value: object) -> None:
        """
        Make ``resolve(tp)`` return ``value``.
        """
        self._factories.pop(tp, None)
        self._values[tp] = value

    def register_factory(self, tp: object, factory: Factory) -> None:
        """
        Make ``resolve(tp)`` return the result of ``factory()``, built once on first use.
        """
        if not callable(factory):
            raise FeedbackValidationError("factory", "must be callable", factory)
        self._values.pop(tp, None)
        self._factories[tp] = factory

    def bind(self, tp: object, value: object) -> None:
        """
        Make ``resolve(tp)`` return ``value``, winning over anything a module registers.

        This is how a test puts a fake in place of a protocol::

            app.container.bind(FeedbackProtocol, FakeFeedback())
        """
        self._bound[tp] = value

    def bound(self, tp: object) -> Any:  # noqa: ANN401 - whatever was bound
        """
        Return the object bound to ``tp`` with `bind`, or None.
        """
        return self._bound.get(tp)

    def unbind(self, tp: object) -> None:
        """
        Remove a binding made with `bind`; a missing binding is ignored.
        """
        self._bound.pop(tp, None)

    def is_registered(self, tp: object) -> bool:
        """
        Return True when ``tp`` is bound or registered (autowiring not considered).
        """
        return tp in self._bound or tp in self._values or tp in self._factories

    async def resolve(self, tp: Callable[..., T]) -> T:
        """
        Return the service registered for ``tp``, or build ``tp`` from its type hints.

        ``tp`` is typed as a callable rather than ``type[T]`` so that type checkers accept
        protocols (``resolve(FeedbackProtocol)``) and infer the protocol as the result.

        Raises:
            ResolutionError: ``tp`` is not registered and cannot be built; the message
                names the parameter that could not be resolved and why.
        """
        value: T = await self._resolve(tp, ())
        return value

    async def _resolve(self, tp: object, chain: tuple[object, ...]) -> Any:  # noqa: ANN401
        if tp in self._bound:
            return self._bound[tp]
        if tp in self._values:
            return self._values[tp]
        if tp in self._factories:
            return await self._from_factory(tp)
        return await self._autowire(tp, chain)

    async def _from_factory(self, tp: object) -> object:
        # One lock per type: a factory may resolve other factory-made types meanwhile.
        async with self._locks.setdefault(tp, asyncio.Lock()):
            if tp in self._values:  # built by a concurrent resolve
                return self._values[tp]
            try:
                value = self._factories[tp]()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                raise ResolutionError(tp, f"its factory raised {exc!r}") from exc
            self._values[tp] = value
            return value

    async def _autowire(self, tp: object, chain: tuple[object, ...]) -> object:
        reason = _why_not_buildable(tp)
        if reason or not isinstance(tp, type):
            raise ResolutionError(tp, reason)
        if tp in chain:
            path = " -> ".join(_name(t) for t in (*chain, tp))
            raise ResolutionError(tp, f"its dependencies form a cycle ({path})")
        try:
            hints = typing.get_type_hints(tp.__init__)  # type: ignore[misc]
            signature = inspect.signature(tp)
        except (NameError, TypeError, ValueError) as exc:
            raise ResolutionError(
                tp, f"its constructor's type hints cannot be read: {exc}"
            ) from exc
        kwargs: dict[str, object] = {}
        for name, param in signature.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if not self._should_inject(tp, name, hints.get(name), param):
                continue
            hint = hints[name]
            try:
                kwargs[name] = await self._resolve(hint, (*chain, tp))
            except ResolutionError as exc:
                msg = f"parameter '{name}: {_name(hint)}' could not be resolved. {exc}"
                raise ResolutionError(tp, msg) from exc
        try:
            return tp(**kwargs)
        except Exception as exc:
            raise ResolutionError(tp, f"its constructor raised {exc!r}") from exc

    def _should_inject(self, tp: type, name: str, hint: object, param: inspect.Parameter) -> bool:
        has_default = param.default is not param.empty
        if hint is None:
            if has_default:
                return False
            raise ResolutionError(tp, f"parameter {name!r} has no type hint and no default")
        # A default only stands in for a type the container knows nothing about; when the
        # type is registered or buildable, a failure deeper down must surface.
        return not (has_default and not self.is_registered(hint) and _why_not_buildable(hint))


def _name(tp: object) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def _why_not_buildable(tp: object) -> str:
    if not isinstance(tp, type):
        return "it is not a class; register it with a module or container.bind()"
    if getattr(tp, "_is_protocol", False):
        return (
            "it is a protocol and nothing provides it; add a module that does "
            "(e.g. FeedbackModule.configure()) or bind an object with container.bind()"
        )
    if tp.__module__ == "builtins":
        return "built-in types are never built automatically; give the parameter a default"
    if inspect.isabstract(tp):
        return "it is abstract; register a concrete implementation"
    return ""


Hook = Callable[[], Awaitable[None]]
ShutdownHook = Hook
"""An async callable run when the application stops."""


class Application:
    """
    A set of modules sharing one `Container`; an async context manager.

    Use ``async with Application.boot(modules=[...]) as app`` or build one with
    ``Application()``, ``add_module(...)`` and ``async with app``. Modules are set up in
    the order given and shut down in reverse order when the block exits.

    Inside ``async with``, SIGTERM (and SIGINT, when nothing else handles it) stops the
    application gracefully: the task that entered the block is cancelled, the shutdown
    hooks run (the feedback writer drains within ``shutdown_timeout_seconds``), and the
    process exits with status 128 + the signal number (143 for SIGTERM). A second signal
    during the shutdown ends the process at once. Signal handlers are installed only in
    the main thread, and only for signals whose handler is still Python's default (a
    server such as uvicorn that handles them itself keeps doing so).

    Args:
        modules: Modules to boot.
        config_path: YAML file to read instead of ``./application.yaml``.
        handle_signals: Install the SIGTERM/SIGINT handlers described above.
    """

    def __init__(
        self,
        *,
        modules: Iterable[Module] = (),
        config_path: str | os.PathLike[str] | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.container = Container()
        self._modules: list[Module] = []
        self._shutdown: list[ShutdownHook] = []
        self._on_start: list[Hook] = []
        self._running = False
        self._starting = False
        self._config_path = Path(config_path) if config_path is not None else None
        self._handle_signals = handle_signals
        self._handled: list[signal.Signals] = []
        self._stopped_by: signal.Signals | None = None
        self._owner: asyncio.Task[Any] | None = None
        for module in modules:
            self.add_module(module)

    @classmethod
    def boot(
        cls,
        *,
        modules: Iterable[Module] = (),
        config_path: str | os.PathLike[str] | None = None,
        handle_signals: bool = True,
    ) -> Application:
        """
        Return an application with ``modules``, ready for ``async with``.
        """
        return cls(modules=modules, config_path=config_path, handle_signals=handle_signals)

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<Application modules={len(self._modules)} {state}>"

    @property
    def config_path(self) -> Path | None:
        """
        The YAML file given at construction, or None for ``./application.yaml``.
        """
        return self._config_path

    @property
    def is_running(self) -> bool:
        """
        True between entering and leaving the ``async with`` block.
        """
        return self._running

    def add_module(self, module: Module) -> Application:
        """
        Add ``module`` to be set up when the application starts; returns the application.

        Raises:
            FeedbackValidationError: ``module`` is not a module, or the app is running.
        """
        if not isinstance(module, Module):
            raise FeedbackValidationError(
                "module", "must be a module such as FeedbackModule.configure()", module
            )
        if self._running:
            raise FeedbackValidationError("module", "cannot be added while the app is running")
        self._modules.append(module)
        return self

    def on_start(self, hook: Hook) -> None:
        """
        Run ``hook`` once every module is set up, before the ``async with`` body runs.

        Start hooks run in the order they were registered; a module uses one to start
        work that must see what later modules register (the feedback writer starts, and
        replays its spool, in one).

        Raises:
            FeedbackValidationError: The application has already started.
        """
        if self._running and not self._starting:
            raise FeedbackValidationError("hook", "cannot be added once the app has started")
        self._on_start.append(hook)

    def on_shutdown(self, hook: ShutdownHook) -> None:
        """
        Run ``hook`` when the application stops (last registered runs first).
        """
        self._shutdown.append(hook)

    async def start(self) -> None:
        """
        Set up every module; on failure, shut down what was set up and re-raise.
        """
        if self._running:
            return
        self._running = self._starting = True
        try:
            for module in self._modules:
                await module.setup(self)
            while self._on_start:
                await self._on_start.pop(0)()
        except BaseException:
            self._on_start.clear()
            await self.stop()
            raise
        finally:
            self._starting = False

    async def stop(self) -> None:
        """
        Run the shutdown hooks; a failing hook is logged and the others still run.
        """
        while self._shutdown:
            hook = self._shutdown.pop()
            try:
                await hook()
            except Exception:  # noqa: BLE001 - cleanup goes on; the error is logged
                _LOG.exception("Shutdown hook %r failed", hook, extra={"hook": repr(hook)})
        self._running = False

    @property
    def stopped_by(self) -> signal.Signals | None:
        """
        The signal that stopped the application, or None.
        """
        return self._stopped_by

    async def __aenter__(self) -> Self:
        await self.start()
        if self._handle_signals:
            self._install_signal_handlers()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove_signal_handlers()
        await self.stop()
        signum = self._stopped_by
        if signum is not None and isinstance(exc, asyncio.CancelledError):
            owner = asyncio.current_task()
            if owner is not None:
                owner.uncancel()
            _LOG.warning("Stopped by %s after a graceful shutdown", signum.name)
            raise SystemExit(128 + signum)

    def _install_signal_handlers(self) -> None:
        self._owner = asyncio.current_task()
        loop = asyncio.get_running_loop()
        defaults = {
            signal.SIGTERM: signal.SIG_DFL,
            signal.SIGINT: signal.default_int_handler,
        }
        for signum, default in defaults.items():
            try:
                if signal.getsignal(signum) is not default:
                    continue  # somebody else (uvicorn, asyncio.run) handles it
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                continue
            self._handled.append(signum)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        while self._handled:
            loop.remove_signal_handler(self._handled.pop())

    def _on_signal(self, signum: signal.Signals) -> None:
        self._stopped_by = signum
        _LOG.warning(
            "Received %s: shutting down gracefully (send it again to stop at once)",
            signum.name,
            extra={"signal": signum.name},
        )
        # The default action comes back, so a second signal ends the process at once.
        self._remove_signal_handlers()
        if self._owner is not None:
            self._owner.cancel()
