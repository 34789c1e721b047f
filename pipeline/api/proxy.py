"""A camera run by another node of the cluster: its frames fetched from that node's API, as they come.

The caller's credentials go along unchanged (every node checks the same tokens in the shared store),
so the node that runs the camera decides what the caller may see, as it would if asked directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import HTTPException, Request, status
from fastapi.responses import StreamingResponse

from pipeline.api.auth import client_address
from pipeline.store import NodeInfo

CONNECT_S = 5.0
FORWARDED = ("authorization", "cookie")
KEPT = ("content-type", "content-length", "cache-control", "x-frame-index", "x-accel-buffering", "retry-after")


async def forward(request: Request, node: NodeInfo, camera: str) -> StreamingResponse:
    """GET the same path and query on `node`, streamed back (one JPEG, or MJPEG for as long as the caller reads)."""
    url = node.url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {name: value for name in FORWARDED if (value := request.headers.get(name))}
    headers["x-forwarded-for"] = client_address(request) or ""
    client = httpx.AsyncClient(timeout=httpx.Timeout(CONNECT_S, read=None))
    try:
        upstream = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"camera {camera!r} runs on node {node.name} ({node.url}), which did not "
            f"answer: {type(exc).__name__}; try again",
        ) from None

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    kept = {name: value for name, value in upstream.headers.items() if name.lower() in KEPT}
    return StreamingResponse(body(), status_code=upstream.status_code, headers=kept)
