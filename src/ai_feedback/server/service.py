"""
`FeedbackService`: what the routes share — the collector, the store, keys and settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from ai_feedback._server_settings import ServerSettings
from ai_feedback.collector import FeedbackCollector
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.protocols import FeedbackStoreProtocol
from ai_feedback.server._state import running
from ai_feedback.server.auth import Authenticator, Principal
from ai_feedback.server.errors import ApiError
from ai_feedback.server.tokens import TokenClaims

__all__ = ["FeedbackService", "Moment", "bind_owner", "check_query", "service"]


@dataclass(slots=True)
class FeedbackService:
    """
    The state of a running service, kept in ``app.state.ai_feedback``.

    Args:
        collector: Records feedback.
        store: Reads it back (waiting for what this process accepted).
        auth: Checks keys and tokens.
        settings: The ``server`` settings.
        extras: Room for the peer protocols' state (LangSmith's presigned tokens).
    """

    collector: FeedbackCollector
    store: FeedbackStoreProtocol
    auth: Authenticator
    settings: ServerSettings
    extras: dict[str, Any] = field(default_factory=dict)


class RequestRoute(APIRoute):
    """
    A route whose endpoint takes the request only and returns a response.

    FastAPI documents the route (parameters, bodies, answers) as usual, but a request
    skips its dependency resolution: the endpoint reads what it needs itself, after
    authenticating. For the hot submission routes of an app with no dependencies of its
    own (`create_app`'s): included elsewhere, dependencies given there would not run.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """
        Return the endpoint itself (FastAPI's handler when the route has dependencies).
        """
        if self.dependencies or self.dependency_overrides_provider is not None:
            return super().get_route_handler()
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def service(request: Request) -> FeedbackService:
    """
    Return the service of the app serving ``request``.

    Raises:
        ApiError: 503 when the app's lifespan, which starts the service, did not run.
    """
    found: FeedbackService = running(request)
    return found


def bind_owner(payload: object, principal: Principal) -> dict[str, Any]:
    """
    Return a copy of ``payload`` owned by the caller's project, within its token's bounds.

    The project goes into ``context.owner_id``: a caller cannot choose it. A browser
    token also fixes the trace (and the session, feedback key and type when it names
    them); a payload naming another is refused.

    Raises:
        FeedbackValidationError: The payload is not an object, or names another owner.
        ApiError: 403 when the payload leaves the token's bounds.
    """
    if not isinstance(payload, dict):
        raise FeedbackValidationError("payload", "must be a JSON object", payload)
    bound = dict(payload)
    context = bound.get("context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise FeedbackValidationError("context", "must be a dict", context)
    context = dict(context)
    owner = context.get("owner_id")
    if owner is not None and owner != principal.project:
        msg = "is set from your API key's project; leave it out"
        raise FeedbackValidationError("context.owner_id", msg, owner)
    context["owner_id"] = principal.project
    if principal.token is not None:
        _within_token(bound, context, principal.token)
    bound["context"] = context
    return bound


def _within_token(payload: dict[str, Any], context: dict[str, Any], claims: TokenClaims) -> None:
    """
    Fix the payload's trace (and session, key, type) to the token's, or refuse it.
    """
    kind = payload.get("type", "rating")
    if claims.feedback_type is not None and kind != claims.feedback_type:
        _outside(f"allows {claims.feedback_type} feedback only")
    for trace in (payload.get("trace_id") if kind == "rating" else None, context.get("trace_id")):
        if trace is not None and trace != claims.trace_id:
            _outside(f"is for trace {claims.trace_id!r}")
    if kind == "rating":
        payload["trace_id"] = claims.trace_id
    context["trace_id"] = claims.trace_id
    if claims.session_id is not None:
        if context.get("session_id", claims.session_id) != claims.session_id:
            _outside(f"is for session {claims.session_id!r}")
        context["session_id"] = claims.session_id
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise FeedbackValidationError("metadata", "must be a dict", metadata)
    metadata = dict(metadata)
    if claims.feedback_key is not None:
        if metadata.get("key", claims.feedback_key) != claims.feedback_key:
            _outside(f"is for the feedback key {claims.feedback_key!r}")
        metadata["key"] = claims.feedback_key
    metadata["token_id"] = claims.token_id
    payload["metadata"] = metadata


def _outside(why: str) -> None:
    raise ApiError(403, "forbidden", f"This browser token {why}.")


_MOMENT_RULE = "must be an ISO 8601 date and time with an offset, such as 2026-01-01T00:00:00Z"
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    """Refuse seconds since 1970 (``1700000000``), which the datetime type would take."""
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise PydanticCustomError("iso_moment", _MOMENT_RULE)
    return value


def _with_offset(moment: datetime | None) -> datetime | None:
    """Refuse a time without an offset (its meaning would depend on the server's zone)."""
    if moment is not None and moment.utcoffset() is None:
        raise PydanticCustomError("iso_moment", _MOMENT_RULE)
    return moment


# A query parameter naming a moment: ISO 8601 text with an offset, nothing else.
Moment = Annotated[
    datetime | None,
    BeforeValidator(_not_a_number),
    AfterValidator(_with_offset),
    Query(description="ISO 8601 with an offset"),
]


# Kept on the route itself (an id() key could be reused by another app's route).
_QUERY_NAMES = "_ai_feedback_query_names"


def check_query(
    request: Request, what: str = "parameter of this route", *, lists: tuple[str, ...] = ()
) -> None:
    """
    Refuse a query parameter the route does not take, or one given twice.

    ``lists`` names the parameters that take several values (``run=a&run=b``).

    A misspelt filter (``sesion_id``) would otherwise be ignored and widen a read, an
    export or a deletion; a repeated one would silently keep only its last value.

    Raises:
        FeedbackValidationError: Naming the parameter.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: tuple[str, ...] | None = getattr(route, _QUERY_NAMES, None)
    if known is None:
        known = tuple(_query_names(route.dependant))
        setattr(route, _QUERY_NAMES, known)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in known:
            listed = f"known: {', '.join(known)}" if known else "it takes none"
            article = "an" if what[0] in "aeiou" else "a"
            raise FeedbackValidationError(name, f"is not {article} {what} ({listed})")
        if name in seen and name not in lists:
            raise FeedbackValidationError(name, "must be given once")
        seen.add(name)


def _query_names(dependant: Any) -> list[str]:  # noqa: ANN401 - FastAPI's Dependant
    names = [param.alias for param in dependant.query_params]
    for sub in dependant.dependencies:
        names += [name for name in _query_names(sub) if name not in names]
    return names
