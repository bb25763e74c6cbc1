"""
Connection URLs as they may be shown: credentials masked.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["masked_url"]

# Query parameters that carry credentials (asyncpg's password, sslpassword; redis-py's
# password; tokens and secrets of any client).
_SECRET_PARTS = ("pass", "token", "secret", "auth", "key")
# Schemes whose user name alone is a credential (a NATS token is sent as the user).
_TOKEN_USERS = ("nats", "tls")


def masked_url(url: str) -> str:
    """
    Return ``url`` with its password, its token and secret query values as ``****``.

    ``postgresql://u:pw@h/db?password=x`` becomes ``postgresql://u:****@h/db?password=****``;
    ``nats://token@h:4222`` becomes ``nats://****@h:4222``. A URL that cannot be parsed
    is shown as ``****``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    hosts = ",".join(_masked_host(host, parts.scheme) for host in parts.netloc.split(","))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(name, "****" if _secret(name) else value) for name, value in pairs], safe="*/:"
        )
    if (hosts, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{hosts}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _masked_host(netloc: str, scheme: str) -> str:
    credentials, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, _ = credentials.partition(":")
    if colon:
        return f"{user}:****@{host}"
    return f"****@{host}" if scheme in _TOKEN_USERS else netloc


def _secret(name: str) -> bool:
    return any(part in name.lower() for part in _SECRET_PARTS)
