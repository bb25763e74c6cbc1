"""
The baseline of the service benchmark: a bare FastAPI app that parses the same bodies.

It answers 202 (one item) or 207 (a batch) and stores nothing.
"""

from __future__ import annotations

import uuid

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/v1/feedback")
async def submit(request: Request) -> Response:
    """Parse the item and answer with a new id."""
    orjson.loads(await request.body())
    return Response(orjson.dumps({"id": str(uuid.uuid4())}), 202, media_type="application/json")


@app.post("/v1/feedback/batch")
async def batch(request: Request) -> Response:
    """Parse the batch and answer one result per item."""
    items = orjson.loads(await request.body())["items"]
    results = [
        {"index": i, "status": "accepted", "id": str(uuid.uuid4())} for i in range(len(items))
    ]
    body = {"accepted": len(items), "rejected": 0, "results": results}
    return Response(orjson.dumps(body), 207, media_type="application/json")
