"""
`create_app`: the ready FastAPI service; `install`: the same routes in your own app.
"""

from __future__ import annotations

import gc
import inspect
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ai_feedback.app import Application
from ai_feedback.collector import FeedbackCollector
from ai_feedback.config import FeedbackConfig
from ai_feedback.exceptions import FeedbackConfigurationError, FeedbackValidationError
from ai_feedback.module import FeedbackModule
from ai_feedback.protocols import FeedbackStoreProtocol
from ai_feedback.server import data, health, langfuse, langsmith, mlflow, native, ui
from ai_feedback.server.auth import Authenticator
from ai_feedback.server.errors import install_handlers
from ai_feedback.server.health import Metrics
from ai_feedback.server.schemas import component_schemas
from ai_feedback.server.service import FeedbackService, RequestRoute

__all__ = ["create_app", "feedback_router", "install"]

_LOG = logging.getLogger("ai_feedback")


def feedback_router() -> APIRouter:
    """
    Return every route of the service: ``/v1``, health, metrics, Langfuse, LangSmith, MLflow.

    Mount it with `install`, which also starts the feedback module with the app.
    """
    router = APIRouter()
    for module in (native, data, health, langfuse, langsmith, mlflow, ui):
        router.routes.extend(module.router.routes)
    return router


_PREFIX = re.compile(r"(/(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]+)*")


def _authenticator(config: FeedbackConfig, *, insecure_no_auth: bool) -> Authenticator:
    settings = config.server
    if not settings.api_keys and not insecure_no_auth:
        msg = (
            "has no keys, so every request would be refused; add keys (ai-feedback keys new "
            "prints one) or start with --insecure-no-auth for a local trial"
        )
        raise FeedbackConfigurationError("server.api_keys", msg)
    secret = settings.token_secret
    if secret is None:
        secret = secrets.token_urlsafe(32)
    return Authenticator(settings.api_keys, secret, insecure=insecure_no_auth)


def _warn_at_start(config: FeedbackConfig, *, insecure_no_auth: bool) -> None:
    """
    Log what an operator must know about a service that starts: once per start.

    (Building an app logs nothing: ``serve`` builds one early only to check the settings.)
    """
    if insecure_no_auth:
        _LOG.warning(
            "Authentication is OFF (--insecure-no-auth): anyone who can reach this service "
            "can write and read feedback, as project 'default'"
        )
    if config.server.token_secret is None:
        _LOG.warning(
            "server.token_secret is not set: browser tokens and dashboard logins are signed "
            "with a random key and work only with this process, until it restarts"
        )


def install(
    app: FastAPI,
    config: FeedbackConfig | None = None,
    *,
    insecure_no_auth: bool = False,
    application: Application | None = None,
    prefix: str = "",
) -> None:
    """
    Add the service's routes, error handlers, CORS and metrics to ``app``.

    The feedback module boots when ``app`` starts (in its lifespan, around whatever
    lifespan it already has) and drains when it stops.

    Args:
        app: Your FastAPI app.
        config: The configuration (read from application.yaml and the environment when
            None).
        insecure_no_auth: Accept requests without keys, as project ``default``.
        application: An `Application` of yours to add the feedback module to.
        prefix: A path the routes go under (``/feedback`` serves ``/feedback/v1/...``
            and the dashboard at ``/feedback/ui``); none by default.

    Raises:
        FeedbackConfigurationError: No keys are configured and ``insecure_no_auth`` is
            False, or a setting is invalid.
        FeedbackValidationError: ``prefix`` is not empty or a path like ``/feedback``.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        msg = (
            "must be empty or a path like /feedback: segments of letters, digits, "
            "'.', '_', '~' and '-', each after one '/', and no '/' at the end"
        )
        raise FeedbackValidationError("prefix", msg, prefix)
    _install(app, config, insecure_no_auth=insecure_no_auth, application=application, prefix=prefix)


def _install(
    app: FastAPI,
    config: FeedbackConfig | None = None,
    *,
    insecure_no_auth: bool = False,
    application: Application | None = None,
    own_app: bool = False,
    prefix: str = "",
) -> None:
    """
    Install the service in ``app`` (`install`); with ``own_app``, in `create_app`'s.
    """
    config = config if config is not None else FeedbackConfig.load()
    auth = _authenticator(config, insecure_no_auth=insecure_no_auth)
    metrics = Metrics()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host: FastAPI) -> AsyncIterator[Any]:
        _warn_at_start(config, insecure_no_auth=insecure_no_auth)
        feedback_app = application if application is not None else Application(handle_signals=False)
        feedback_app.add_module(FeedbackModule.configure(config))
        async with feedback_app:
            container = feedback_app.container
            host.state.ai_feedback = FeedbackService(
                collector=await container.resolve(FeedbackCollector),
                store=await container.resolve(FeedbackStoreProtocol),
                auth=auth,
                settings=config.server,
                extras={"metrics": metrics},
            )
            async with inner(host) as state:
                yield state

    app.router.lifespan_context = lifespan
    if own_app:
        # An app of ours has no dependencies or settings of its own to pass on: its routes
        # are listed flat (FastAPI walks included routers again on every request), and
        # the submissions take the route that skips dependency resolution.
        app.router.routes.extend(_service_routes())
    else:
        app.include_router(feedback_router(), prefix=prefix)
    install_handlers(app)
    app.add_middleware(_Counting, metrics=metrics)
    if config.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.server.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "x-api-key"],
            max_age=600,
        )
    _document_bodies(app)


class _Counting:
    """
    ASGI middleware counting requests in the service's metrics.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self._app = metrics.counting(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def create_app(config: FeedbackConfig | None = None, *, insecure_no_auth: bool = False) -> FastAPI:
    """
    Return the feedback service as a FastAPI app (run it with uvicorn).

    Raises:
        FeedbackConfigurationError: No keys are configured and ``insecure_no_auth`` is
            False, or a setting is invalid.
    """
    options: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI's own OpenTelemetry hooks look up the tracer provider on every request;
        # the service reports Prometheus metrics instead (install() keeps your choice).
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="ai-feedback",
        summary="Collect feedback on AI model outputs; Langfuse, LangSmith, MLflow SDKs welcome.",
        version=_version(),
        **options,
    )
    _install(app, config, insecure_no_auth=insecure_no_auth, own_app=True)
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host: FastAPI) -> AsyncIterator[Any]:
        async with started(host) as state, _FREEZER:
            yield state

    app.router.lifespan_context = lifespan
    return app


def _service_routes() -> list[BaseRoute]:
    """
    Return every route of the service, flat, with the fast submission routes.

    They come first (the most requested), in place of the usual ones.
    """
    submissions = APIRouter(prefix="/v1", tags=["feedback"], route_class=RequestRoute)
    native.add_submissions(submissions)
    fast = submissions.routes
    taken = {_route_key(route) for route in fast}
    return [*fast, *(r for r in feedback_router().routes if _route_key(r) not in taken)]


def _route_key(route: BaseRoute) -> tuple[str, frozenset[str]] | None:
    if not isinstance(route, APIRoute):
        return None
    return route.path, frozenset(route.methods or ())


class _Freezer:
    """
    Keeps what start-up built out of the garbage collector's full passes while apps serve.

    Those objects live as long as the process, and full collections over them stalled
    requests for tens of milliseconds. Counted, so that several apps in one process
    share it; what the host froze before the first app is left frozen.
    """

    def __init__(self) -> None:
        self._serving = 0
        self._host_froze = False

    async def __aenter__(self) -> None:
        if self._serving == 0:
            self._host_froze = gc.get_freeze_count() > 0
        gc.freeze()  # this app's start-up too, when another already serves
        self._serving += 1

    async def __aexit__(self, *exc: object) -> None:
        self._serving -= 1
        if self._serving == 0 and not self._host_froze:
            gc.unfreeze()


_FREEZER = _Freezer()


# How a key is sent: every route but these takes one (a presigned token's id is its key).
_SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "A key's secret or a token"},
    "basic": {"type": "http", "scheme": "basic", "description": "Key id and secret"},
}
_KEYLESS = ("/healthz", "/readyz", "/metrics", "/info", "/feedback/tokens/{token_id}")


def _document_bodies(app: FastAPI) -> None:
    """
    Add the request bodies' schemas and the ways to send a key to the OpenAPI document.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(component_schemas())
            components["securitySchemes"] = _SECURITY_SCHEMES
            for path, operations in document.get("paths", {}).items():
                if not path.endswith(_KEYLESS):
                    for operation in operations.values():
                        operation["security"] = [{name: []} for name in _SECURITY_SCHEMES]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import version  # noqa: PLC0415 - only when building the app

    return version("ai-feedback")
