"""
Who is calling: API keys (three ways to send them), browser tokens, and scopes.

A key's secret is accepted as ``Authorization: Bearer <secret>``, as ``x-api-key:
<secret>`` and as HTTP Basic ``<key id>:<secret>`` (what the Langfuse SDK sends). Only
its SHA-256 is configured; the comparison is constant-time over every key. Routes
declare a scope with `require`; the dependency runs before the body is read, so a
missing or wrong key is 401 and a key without the scope 403 whatever the body holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request

from ai_feedback._server_settings import SCOPES, ApiKeyEntry, Scope
from ai_feedback.server._state import running
from ai_feedback.server.errors import ApiError
from ai_feedback.server.tokens import PREFIX, TokenClaims, TokenError, verify

__all__ = ["Authenticator", "Principal", "authorize", "require", "unauthorized"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ai-feedback", Basic realm="ai-feedback"'}
NO_AUTH_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    """
    The caller of a request: a project, what it may do, and how it proved it.

    Args:
        project: The project every write is owned by and every read is limited to.
        scopes: The scopes of its key (none for a browser token).
        key_id: The key's public id, or None (browser token, no authentication).
        token: The browser token's claims, when it used one.
    """

    project: str
    scopes: frozenset[str]
    key_id: str | None = None
    token: TokenClaims | None = None

    def allows(self, scope: Scope) -> bool:
        """
        Return whether the caller has ``scope`` (``admin`` includes the others).
        """
        return scope in self.scopes or "admin" in self.scopes


class Authenticator:
    """
    Turns request headers into a `Principal`.

    Args:
        keys: The configured keys.
        token_secret: The secret that signs browser tokens.
        insecure: Accept calls without credentials as project ``default``, all scopes.
    """

    def __init__(self, keys: Sequence[ApiKeyEntry], token_secret: str, *, insecure: bool) -> None:
        self._keys = tuple(keys)
        self._by_id = {key.id: key for key in self._keys}
        self._token_secret = token_secret
        self._insecure = insecure

    @property
    def insecure(self) -> bool:
        """
        Whether calls without credentials are accepted (``--insecure-no-auth``).
        """
        return self._insecure

    @property
    def token_secret(self) -> str:
        """
        The secret that signs browser tokens.
        """
        return self._token_secret

    def key(self, key_id: str) -> ApiKeyEntry | None:
        """
        Return the configured key with the public id ``key_id``, or None.
        """
        return self._by_id.get(key_id)

    def of_key(self, key: ApiKeyEntry) -> Principal:
        """
        Return the caller that ``key`` proves.
        """
        return _of(key)

    def principal(self, headers: dict[str, str] | object) -> Principal | None:
        """
        Return the caller the headers prove, or None when they carry no credentials.

        Raises:
            ApiError: 401 for wrong credentials or a bad token.
        """
        get = getattr(headers, "get")  # noqa: B009 - Starlette headers or a dict
        authorization: str = get("authorization") or ""
        api_key: str | None = get("x-api-key")
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and credentials.startswith(PREFIX):
            return self._token(credentials.strip())
        if scheme == "bearer" and credentials:
            return self._secret(credentials.strip())
        if scheme == "basic" and credentials:
            return self._basic(credentials.strip())
        if api_key:
            return self._secret(api_key.strip())
        if authorization:
            raise unauthorized("the Authorization header must be 'Bearer <secret>' or Basic")
        if self._insecure:
            return Principal(NO_AUTH_PROJECT, frozenset(SCOPES))
        return None

    def _match(self, secret: str, candidates: Sequence[ApiKeyEntry]) -> ApiKeyEntry | None:
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        found = None
        for key in candidates:  # every key is compared, so timing tells nothing
            if hmac.compare_digest(key.secret_sha256, digest):
                found = key
        return found

    def _secret(self, secret: str) -> Principal:
        key = self._match(secret, self._keys)
        if key is None:
            raise unauthorized("the API key is not valid")
        return _of(key)

    def _basic(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (ValueError, binascii.Error):  # non-ASCII text is a ValueError
            raise unauthorized("the Basic credentials are not base64 'id:secret'") from None
        key_id, _, secret = decoded.partition(":")
        key = self._by_id.get(key_id)
        match = self._match(secret, (key,) if key is not None else self._keys[:1])
        if key is None or match is None:
            raise unauthorized("the key id or the secret is not valid")
        return _of(key)

    def _token(self, token: str) -> Principal:
        try:
            claims = verify(self._token_secret, token)
        except TokenError as exc:
            raise unauthorized(f"the browser token {exc}") from None
        return Principal(claims.project, frozenset(), token=claims)


def _of(key: ApiKeyEntry) -> Principal:
    return Principal(key.project, frozenset(key.scopes), key_id=key.id)


def unauthorized(why: str) -> ApiError:
    """
    Return the 401 error saying ``why``, with the challenge every 401 of the service sends.
    """
    return ApiError(401, "unauthorized", f"Not authorized: {why}.", headers=_CHALLENGE)


def authorize(request: Request, scope: Scope | None, *, token: bool = False) -> Principal:
    """
    Authenticate ``request`` and check ``scope``; what `require` does, as a plain call.

    The hot POST routes call it first thing (before reading the body), which costs less
    than a FastAPI dependency.

    Raises:
        ApiError: 401 without valid credentials, 403 without the scope.
    """
    authenticator: Authenticator = running(request).auth
    principal = authenticator.principal(request.headers)
    if principal is None:
        raise unauthorized("send an API key (Authorization: Bearer, x-api-key or Basic)")
    if principal.token is not None:
        if token:
            return principal
        raise ApiError(403, "forbidden", "A browser token may only submit feedback.")
    if scope is not None and not principal.allows(scope):
        msg = f"The key {principal.key_id!r} lacks the {scope!r} scope."
        raise ApiError(403, "forbidden", msg)
    return principal


def require(
    scope: Scope | None, *, token: bool = False
) -> Callable[[Request], Awaitable[Principal]]:
    """
    Return a dependency that authenticates the request and checks ``scope``.

    ``scope=None`` accepts any valid key. With ``token=True`` a browser token is
    accepted too (the route then checks what it is bound to). Runs before the body is
    read.

    Raises:
        ApiError: 401 without valid credentials, 403 without the scope.
    """

    async def dependency(request: Request) -> Principal:
        return authorize(request, scope, token=token)

    return dependency
