"""
Connection URLs as they may be shown: credentials masked.
"""

from __future__ import annotations

import re

__all__ = ["host_problem", "masked_url"]

# Query parameters that carry credentials (asyncpg's password, sslpassword; redis-py's
# password; tokens and secrets of any client).
_SECRET_PARTS = ("pass", "token", "secret", "auth", "key")
# Schemes whose user name alone is a credential (a NATS token is sent as the user).
_TOKEN_USERS = ("nats", "tls")
_NETLOC_END = re.compile(r"[/?#]")
# One host of a URL's host list: a name or IPv4 address, or [an IPv6 address], then an
# optional port of digits.
_HOST = re.compile(r"(?:\[[^\]]*\]|[^\[\]:,]*)(?::(?P<port>.*))?")


def masked_url(url: str) -> str:
    """
    Return ``url`` with its password, its token and secret query values as ``****``.

    ``postgresql://u:pw@h/db?password=x`` becomes ``postgresql://u:****@h/db?password=****``
    and ``nats://token@h:4222`` becomes ``nats://****@h:4222``; everything else is kept
    as written, byte for byte.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = _NETLOC_END.search(rest)
    netloc, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    if scheme.lower() in _TOKEN_USERS:  # one user per server: nats://a:b@h1,c:d@h2
        netloc = ",".join(_masked_user(part, token=True) for part in netloc.split(","))
    else:  # a password may hold a comma
        netloc = _masked_user(netloc, token=False)
    path, mark, query = tail.partition("?")
    if mark:
        query, hash_mark, fragment = query.partition("#")
        pairs = [_masked_pair(pair) for pair in query.split("&")]
        tail = f"{path}?{'&'.join(pairs)}{hash_mark}{fragment}"
    return f"{scheme}://{netloc}{tail}"


def _masked_user(netloc: str, *, token: bool) -> str:
    credentials, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, _ = credentials.partition(":")
    if colon:
        return f"{user}:****@{host}"
    return f"****@{host}" if token else netloc


def _masked_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    if equals and any(part in name.lower() for part in _SECRET_PARTS):
        return f"{name}=****"
    return pair


def host_problem(url: str) -> str:
    """
    Return why the host part of ``url`` cannot be used ('' when it can).

    The host part may list several ``host:port`` pairs separated by commas (PostgreSQL);
    each port (when given) must be a number from 1 to 65535 and an IPv6 address must be
    bracketed.
    """
    _, _, rest = url.partition("://")
    end = _NETLOC_END.search(rest)
    hosts = (rest[: end.start()] if end else rest).rpartition("@")[2]
    for host in hosts.split(","):
        found = _HOST.fullmatch(host)
        if found is None:
            return f"has a host that is not host:port ({host!r})"
        port = found.group("port")
        if port and not (port.isdigit() and 0 < int(port) < 65536):  # noqa: PLR2004 - '' is the default
            return f"has a port that is not a number from 1 to 65535 ({port!r})"
    return ""
