"""
The PostgreSQL backend for the contract suite: a fresh schema per test, dropped afterwards.

The server is the one the test command starts, at `POSTGRES_URL` (override it with the
``AI_FEEDBACK_TEST_POSTGRES_URL`` environment variable). Each store lives in its own random
schema, so tests can share the database with other test runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from ai_feedback.stores.postgres import PostgresFeedbackStore

POSTGRES_URL = os.environ.get(
    "AI_FEEDBACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def new_schema_name() -> str:
    """Return a schema name no other test uses."""
    return f"t_{secrets.token_hex(8)}"


async def drop_schema(schema: str) -> None:
    """Drop ``schema`` and everything in it, if it exists."""
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """Yield a new schema name; the schema is dropped at the end, even on failure."""
    schema = new_schema_name()
    try:
        yield schema
    finally:
        await drop_schema(schema)


@asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[PostgresFeedbackStore]:
    """Yield an empty store in a fresh schema; close it and drop the schema afterwards."""
    async with fresh_schema() as schema:
        store = await PostgresFeedbackStore.open(POSTGRES_URL, schema=schema)
        async with store:
            yield store
