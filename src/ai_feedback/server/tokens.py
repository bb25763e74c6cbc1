"""
Browser tokens: signed, expiring permissions to submit feedback on one trace.

A key with the ``ingest`` scope mints a token (``POST /v1/tokens``) bound to its
project, one ``trace_id`` and optionally a ``session_id``, a feedback key and a type; a
browser then sends it as ``Authorization: Bearer aft_...`` to ``POST /v1/feedback``
without any secret. The token is ``aft_`` + base64url(JSON claims) + ``.`` +
base64url(HMAC-SHA256 of the claims with the server's ``token_secret``), checked in
constant time; nothing is stored on the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PREFIX", "TokenClaims", "TokenError", "mint", "seal", "unseal", "verify"]

PREFIX = "aft_"


class TokenError(Exception):
    """
    A token is malformed, forged or expired (the message says which).
    """


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """
    What a browser token allows.

    Args:
        project: The project (owner) the feedback is written to.
        trace_id: The only trace the token may give feedback on.
        expires_at: Seconds since the epoch after which the token is refused.
        token_id: A random id, recorded with the feedback it submits.
        session_id: When set, the session the feedback is written to.
        feedback_key: When set, the feedback's key (``metadata.key``).
        feedback_type: When set, the only type of feedback allowed.
    """

    project: str
    trace_id: str
    expires_at: float
    token_id: str
    session_id: str | None = None
    feedback_key: str | None = None
    feedback_type: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def seal(secret: str, prefix: str, fields: dict[str, Any]) -> str:
    """
    Return ``prefix`` + base64url(JSON of ``fields``) + ``.`` + its HMAC-SHA256 signature.
    """
    body = _b64(orjson.dumps(fields))
    return f"{prefix}{body}.{_sign(secret, body)}"


def unseal(secret: str, prefix: str, sealed: str) -> dict[str, Any]:
    """
    Return the fields `seal` put in ``sealed``, once its signature is checked.

    Raises:
        TokenError: ``sealed`` was not made by `seal` with ``prefix`` and ``secret``.
    """
    if not sealed.startswith(prefix) or sealed.count(".") != 1:
        msg = "is not a browser token" if prefix == PREFIX else "is not a sealed value"
        raise TokenError(msg)
    body, _, signature = sealed.removeprefix(prefix).partition(".")
    if not signature.isascii() or not hmac.compare_digest(_sign(secret, body), signature):
        msg = "has a wrong signature"
        raise TokenError(msg)
    try:
        fields = orjson.loads(_unb64(body))
    except ValueError as exc:
        msg = "cannot be read"
        raise TokenError(msg) from exc
    if not isinstance(fields, dict):
        msg = "cannot be read"
        raise TokenError(msg)
    return fields


def mint(secret: str, claims: TokenClaims) -> str:
    """
    Return the token for ``claims``, signed with ``secret``.
    """
    fields: dict[str, Any] = {
        "p": claims.project,
        "t": claims.trace_id,
        "e": claims.expires_at,
        "i": claims.token_id,
    }
    optional = {"s": claims.session_id, "k": claims.feedback_key, "y": claims.feedback_type}
    fields |= {key: value for key, value in optional.items() if value is not None}
    return seal(secret, PREFIX, fields)


def verify(secret: str, token: str, *, now: float | None = None) -> TokenClaims:
    """
    Return the claims of ``token`` if ``secret`` signed it and it has not expired.

    Raises:
        TokenError: The token is malformed, its signature is wrong, or it expired.
    """
    fields = unseal(secret, PREFIX, token)
    try:
        claims = TokenClaims(
            project=str(fields["p"]),
            trace_id=str(fields["t"]),
            expires_at=float(fields["e"]),
            token_id=str(fields["i"]),
            session_id=fields.get("s"),
            feedback_key=fields.get("k"),
            feedback_type=fields.get("y"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        msg = "cannot be read"
        raise TokenError(msg) from exc
    if (time.time() if now is None else now) >= claims.expires_at:
        msg = "has expired"
        raise TokenError(msg)
    return claims


def new_token_id() -> str:
    """
    Return a random token id.
    """
    return secrets.token_hex(8)
