"""
The service under test: keys for two projects, an SQLite store, and a live server.

``client`` runs the app in-process (Starlette's TestClient, lifespan included);
``live`` runs it under a real uvicorn server on a free port, for the peer SDKs and for
what needs real sockets.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.testclient import TestClient

from ai_feedback import FeedbackConfig
from ai_feedback.server import create_app

SECRETS = {
    "a-ingest": ("afk_a_ingest_secret", "proj-a", ["ingest"]),
    "a-read": ("afk_a_read_secret", "proj-a", ["read"]),
    "a-all": ("afk_a_all_secret", "proj-a", ["ingest", "read"]),
    "b-all": ("afk_b_all_secret", "proj-b", ["ingest", "read", "admin"]),
    # The Langfuse SDK keeps one client per public key: a test that shuts its client down
    # leaves that key's client dead for later tests, so the deletion test has its own key.
    "b-langfuse": ("afk_b_langfuse_secret", "proj-b", ["ingest", "read", "admin"]),
    "a-langfuse": ("afk_a_langfuse_secret", "proj-a", ["ingest", "read"]),
}
TOKEN_SECRET = "t" * 40


def key(name: str) -> dict[str, str]:
    """The x-api-key header of the key ``name``."""
    return {"x-api-key": SECRETS[name][0]}


def bearer(name: str) -> dict[str, str]:
    """The Authorization: Bearer header of the key ``name``."""
    return {"Authorization": f"Bearer {SECRETS[name][0]}"}


def server_config(
    tmp_path: Path,
    top: dict[str, Any] | None = None,
    **server: Any,
) -> FeedbackConfig:
    """A configuration with the test keys, an SQLite store in ``tmp_path``, and ``server``."""
    keys = [
        {
            "id": name,
            "secret_sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "project": project,
            "scopes": scopes,
        }
        for name, (secret, project, scopes) in SECRETS.items()
    ]
    settings = {"api_keys": keys, "token_secret": TOKEN_SECRET, **server}
    return FeedbackConfig(
        store="sqlite",
        database_url=f"sqlite:///{tmp_path / 'feedback.db'}",
        batch_max_delay_ms=2,
        server=settings,
        **(top or {}),
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The service in-process, with its lifespan running."""
    with TestClient(create_app(server_config(tmp_path))) as test_client:
        yield test_client


class LiveServer:
    """A uvicorn server for ``app`` in a thread of its own, on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    """The base URL of the service running under uvicorn."""
    with LiveServer(create_app(server_config(tmp_path))) as url:
        yield url


def stalled_request(url: str, head: str, start: bytes, until: bytes) -> tuple[bytes, float]:
    """
    Send ``head`` and the ``start`` of a longer body to the server at ``url``, then stall.

    Return what the server answered (read until ``until`` or the close) and how long
    the answer took after the stall began.
    """
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode() + start)
        started = time.monotonic()
        received = b""
        while until not in received:  # the head and the body may come apart
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - started
