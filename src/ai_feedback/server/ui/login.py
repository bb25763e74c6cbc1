"""
Who looks at the dashboard: a key given once in a login form, then a signed session.

The login form checks the key; the browser then keeps a session, never the key's
secret: the key's public id, a keyed fingerprint of its configured hash and an expiry,
signed (HMAC-SHA256) with a key derived from the service's ``token_secret``. The cookie is
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it),
limited to the dashboard's path (``/ui``, after any prefix) and ``Secure`` when the page
was served over https. Every page checks it again: a forged or expired session, or one
whose key was removed, given a new secret or lost the ``read`` scope, shows the login
form, never data.

Forms that change state (log in, log out) are also refused when the browser says they
come from another origin (``Origin``), which SameSite alone leaves to the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from ai_feedback._server_settings import ApiKeyEntry
from ai_feedback.server.auth import Authenticator, Principal
from ai_feedback.server.errors import ApiError
from ai_feedback.server.service import service
from ai_feedback.server.tokens import TokenError, seal, unseal

__all__ = [
    "COOKIE",
    "LOGIN_MAX_AGE",
    "forget",
    "from_other_origin",
    "remember",
    "viewer",
    "visitor",
]

COOKIE = "ai_feedback_session"
_OLD_COOKIE = "ai_feedback_key"  # earlier versions kept the key's secret there
LOGIN_MAX_AGE = 8 * 3600
"""How long a login lasts, in seconds."""
_SESSION = "afs_"


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
    Return who the request's session proves, or None (then the page shows the login form).
    """
    sealed = request.cookies.get(COOKIE)
    principal = _session(request, sealed) if sealed else None
    # Without authentication everyone may look, whatever cookie another service left.
    return principal if principal is not None else visitor(request, None)


def _session(request: Request, sealed: str) -> Principal | None:
    """
    Return who the session ``sealed`` proves when it is good and may read, else None.
    """
    auth = service(request).auth
    signing = _session_key(auth)
    try:
        fields = unseal(signing, _SESSION, sealed)
        key = auth.key(str(fields["k"]))
        expires_at = float(fields["e"])
        fingerprint = str(fields["f"])
    except (TokenError, KeyError, TypeError, ValueError):
        return None
    if key is None or time.time() >= expires_at:
        return None
    if not hmac.compare_digest(fingerprint.encode(), _fingerprint(signing, key).encode()):
        return None  # the key was given a new secret since
    principal = auth.of_key(key)
    return principal if principal.allows("read") else None


def remember(response: Response, request: Request, principal: Principal, *, path: str) -> None:
    """
    Start a session for ``principal`` (who logged in with a key) in ``response``'s cookie.

    ``path`` is the dashboard's path as the browser sees it; the cookie is sent there only.
    """
    auth = service(request).auth
    key = auth.key(principal.key_id) if principal.key_id is not None else None
    if key is None:  # without authentication there is nothing to remember
        return
    signing = _session_key(auth)
    fields = {"k": key.id, "f": _fingerprint(signing, key), "e": time.time() + LOGIN_MAX_AGE}
    _forget_old(response, request, path)
    response.set_cookie(
        COOKIE,
        seal(signing, _SESSION, fields),
        max_age=LOGIN_MAX_AGE,
        path=path,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def forget(response: Response, request: Request, *, path: str) -> None:
    """
    Remove the login cookie (and the one earlier versions kept the key's secret in).
    """
    for name in (COOKIE, _OLD_COOKIE):
        _delete(response, request, name, path)


def _forget_old(response: Response, request: Request, path: str) -> None:
    if _OLD_COOKIE in request.cookies:
        _delete(response, request, _OLD_COOKIE, path)


def _delete(response: Response, request: Request, name: str, path: str) -> None:
    secure = request.url.scheme == "https"
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")


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


def _session_key(auth: Authenticator) -> str:
    """
    Return the key that signs sessions.

    It is derived from ``token_secret``, so that a session and a browser token can never
    pass for each other.
    """
    secret = auth.token_secret.encode()
    return hmac.new(secret, b"ai-feedback dashboard session", hashlib.sha256).hexdigest()


def _fingerprint(signing: str, key: ApiKeyEntry) -> str:
    """
    Return what ties a session to the key's current secret.

    Keyed, so that a stolen cookie gives nothing to guess the secret with.
    """
    digest = hmac.new(signing.encode(), key.secret_sha256.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
