"""Seeded feedback for the dashboard's tests: two projects, a week of items of every type."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.testclient import TestClient

from tests.server.conftest import key

MODELS = ("gpt-4o", "claude-3-5-sonnet", "llama-3-70b")
PROVIDERS = {"gpt-4o": "openai", "claude-3-5-sonnet": "anthropic", "llama-3-70b": "meta"}


def payloads(count: int = 240, *, seed: int = 11) -> list[dict[str, Any]]:
    """Items of every type over the last 7 days, most in the last 24 hours."""
    rng = random.Random(seed)  # noqa: S311 - test data
    now = datetime.now(UTC)
    items: list[dict[str, Any]] = []
    for n in range(count):
        model = MODELS[n % 3]
        hours = rng.uniform(0, 24) if n % 4 else rng.uniform(24, 168)
        context = {
            "model": model,
            "provider": PROVIDERS[model],
            "session_id": f"s-{n % 9}",
            "trace_id": f"trace-{n}",
        }
        created = (now - timedelta(hours=hours)).isoformat()
        kind = n % 10
        if kind < 7:
            best = {"gpt-4o": 5, "claude-3-5-sonnet": 5, "llama-3-70b": 3}[model]
            score = rng.randint(1, best)
            items.append({"score": score, "context": context, "created_at": created})
        elif kind == 7:
            text = rng.choice(["Too long.", "Please cite your sources.", "Great, thanks!"])
            items.append({"type": "text", "text": text, "context": context, "created_at": created})
        elif kind == 8:
            captured = {"input": "What is the capital of Australia?", "output": "Sydney."}
            items.append(
                {
                    "type": "correction",
                    "original": "The capital of Australia is Sydney.",
                    "corrected": "The capital of Australia is Canberra.",
                    "context": {**context, "captured": captured},
                    "created_at": created,
                }
            )
        else:
            items.append(
                {
                    "type": "label",
                    "label": rng.choice(["positive", "negative"]),
                    "input": {"text": "I love this!"},
                    "context": context,
                    "created_at": created,
                }
            )
    return items


def seed(
    client: TestClient | httpx.Client,
    name: str,
    items: list[dict[str, Any]],
    *,
    path: str = "/v1/feedback/batch",
) -> None:
    """Submit ``items`` with the key ``name`` (batches of 100) and check each was accepted."""
    for start in range(0, len(items), 100):
        response = client.post(path, json={"items": items[start : start + 100]}, headers=key(name))
        assert response.status_code == 207, response.text
        assert response.json()["rejected"] == 0, response.text


def flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``/v1/stats``'s JSON as dotted paths: ``rating.percentiles.p50`` -> value."""
    flat: dict[str, Any] = {}
    for name, value in figures.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat
