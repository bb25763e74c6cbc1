"""
Who looks at the dashboard: a key given once in a login form, kept in a cookie.

The cookie holds the key's secret. It is ``HttpOnly`` (no script reads it),
``SameSite=Strict`` (no other site's page sends it), limited to ``Path=/ui`` and
``Secure`` when the page was served over https. Every page checks it with the service's
`Authenticator`: a key that is wrong, revoked or lacks the ``read`` scope shows the login
form, never data.

Forms that change state (log in, log out) are also refused when the browser says they
come from another origin (``Origin``), which SameSite alone leaves to the browser.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from ai_feedback.server.auth import Principal
from ai_feedback.server.errors import ApiError
from ai_feedback.server.service import service

__all__ = [
    "COOKIE",
    "LOGIN_MAX_AGE",
    "forget",
    "from_other_origin",
    "remember",
    "viewer",
    "visitor",
]

COOKIE = "ai_feedback_key"
LOGIN_MAX_AGE = 8 * 3600
"""How long a login lasts, in seconds."""


def visitor(request: Request, secret: str | None) -> Principal | None:
    """
    Return the caller that ``secret`` proves when it may read, else None.

    Without a secret this is None, unless the service runs without authentication
    (``--insecure-no-auth``), where everyone is project ``default``.
    """
    auth = service(request).auth
    try:
        principal = auth.principal({"x-api-key": secret} if secret else {})
    except ApiError:
        return None
    if principal is None or principal.token is not None or not principal.allows("read"):
        return None
    return principal


def viewer(request: Request) -> Principal | None:
    """
    Return who the request's cookie proves, or None (then the page shows the login form).
    """
    return visitor(request, request.cookies.get(COOKIE))


def remember(response: Response, request: Request, secret: str) -> None:
    """
    Keep ``secret`` in the login cookie of ``response``.
    """
    response.set_cookie(
        COOKIE,
        secret,
        max_age=LOGIN_MAX_AGE,
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def forget(response: Response, request: Request) -> None:
    """
    Remove the login cookie.
    """
    response.delete_cookie(
        COOKIE,
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def from_other_origin(request: Request) -> bool:
    """
    Return True when the browser says the form was posted from another origin.

    Browsers send ``Origin`` with every form POST; a request without it (a script, curl)
    is not a cross-site form and is accepted.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return False
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc)
