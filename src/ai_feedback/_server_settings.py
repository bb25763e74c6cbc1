"""
The ``server:`` part of the configuration: API keys, browser tokens, CORS and HTTP limits.

It lives in `FeedbackConfig.server` (YAML ``ai_feedback.server``, environment
``AI_FEEDBACK__SERVER__<KEY>``); only the HTTP service reads it.
"""

from __future__ import annotations

import re
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["SCOPES", "ApiKeyEntry", "Scope", "ServerSettings"]

Scope = Literal["ingest", "read", "admin"]
"""What a key may do: submit feedback, read it back, or administer (delete, export)."""
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class ApiKeyEntry(BaseModel):
    """
    One API key: a public id, the SHA-256 of its secret, a project and scopes.

    The secret itself is never configured: ``ai-feedback keys new`` prints a fresh one
    once, with the entry to paste here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    secret_sha256: str
    project: str
    scopes: tuple[Scope, ...] = Field(default=("ingest", "read"), min_length=1)

    @field_validator("scopes")
    @classmethod
    def _each_once(cls, scopes: tuple[Scope, ...]) -> tuple[Scope, ...]:
        if len(set(scopes)) != len(scopes):
            msg = "must name each scope once"
            raise ValueError(msg)
        return scopes

    @field_validator("secret_sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            msg = "must be the 64 lowercase hex digits of the secret's SHA-256"
            raise ValueError(msg)
        return value

    @field_validator("id", "project")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            msg = "must be 1-128 of A-Z a-z 0-9 _ . : - and start with a letter or digit"
            raise ValueError(msg)
        return value

    def allows(self, scope: Scope) -> bool:
        """
        Return whether the key has ``scope`` (``admin`` includes the others).
        """
        return scope in self.scopes or "admin" in self.scopes


def refuse_booleans(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:  # noqa: ANN401
    """
    Return ``value``, unless it is a bool given for a number (YAML's ``yes`` is ``true``).

    Pydantic reads ``true`` as 1 for a number, so ``retention_days: yes`` would keep one
    day of feedback.
    """
    if isinstance(value, bool) and info.field_name is not None:
        annotation = model.model_fields[info.field_name].annotation
        kinds = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
        if annotation in (int, float) or int in kinds or float in kinds:
            msg = "must be a number, not true or false"
            raise ValueError(msg)
    return value


class ServerSettings(BaseModel):
    """
    Settings of the HTTP service.

    Args:
        api_keys: The keys the service accepts; with none, it refuses to start unless
            started with ``--insecure-no-auth``.
        token_secret: The HMAC key that signs browser tokens and dashboard sessions (32+
            characters). Give every process of one service the same; when unset, ``serve``
            makes one for its workers at start (``create_app`` alone, one per process), and
            tokens and sessions end when the service restarts.
        token_max_seconds: The longest lifetime a browser token may be given.
        cors_origins: Origins allowed to call the service from a browser (``*`` for any).
        max_body_bytes: The largest request body accepted (413 beyond).
        body_timeout_seconds: How long a request body may take to arrive (408 after).
        batch_max_items: The most items in one batch request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: tuple[ApiKeyEntry, ...] = ()
    token_secret: str | None = Field(default=None, min_length=32)
    token_max_seconds: float = Field(default=7 * 24 * 3600.0, gt=0, allow_inf_nan=False)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    body_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    batch_max_items: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:  # noqa: ANN401
        return refuse_booleans(cls, value, info)

    @field_validator("api_keys")
    @classmethod
    def _unique_ids(cls, keys: tuple[ApiKeyEntry, ...]) -> tuple[ApiKeyEntry, ...]:
        seen: set[str] = set()
        for key in keys:
            if key.id in seen:
                msg = f"key id {key.id!r} is used twice"
                raise ValueError(msg)
            seen.add(key.id)
        return keys
