"""
NATS JetStream for tests: a fresh stream (and subject and consumer) per test, deleted after.

The server is the one the test command starts, at `NATS_URL` (override it with the
``AI_FEEDBACK_TEST_NATS_URL`` environment variable).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import nats.js.errors

NATS_URL = os.environ.get("AI_FEEDBACK_TEST_NATS_URL", "nats://127.0.0.1:4222")


def spool_url(name: str, **options: object) -> str:
    """Return a spool URL for the stream ``name`` with its own subject and consumer."""
    query = f"stream={name}&subject={name.lower()}.items&consumer={name.lower()}_writer"
    extra = "".join(f"&{key}={value}" for key, value in options.items())
    return f"{NATS_URL}?{query}{extra}"


async def delete_streams(name: str) -> None:
    """Delete the stream ``name`` and its dead-letter stream, if they exist."""
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        for stream in (name, f"{name}_DEAD"):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()


@asynccontextmanager
async def fresh_stream() -> AsyncIterator[str]:
    """Yield a new stream name; its streams are deleted at the end, even on failure."""
    name = f"T_{secrets.token_hex(6).upper()}"
    try:
        yield name
    finally:
        await delete_streams(name)
