"""Cameras of the live site: their state, their newest frames, and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pipeline.api.auth import Viewer
from pipeline.api.deps import (
    AUTH_ERRORS,
    COMMON,
    NOT_FOUND,
    Hub,
    Live,
    camera_out,
    camera_worker,
    known_camera,
    site_cameras,
)
from pipeline.api.proxy import forward
from pipeline.api.schemas import CameraOut, Error
from pipeline.store import NodeInfo

router = APIRouter(responses=COMMON)
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/api/cameras", responses=AUTH_ERRORS)
def cameras(live: Live, who: Viewer) -> list[CameraOut]:
    """Every camera of the site the caller may see; in a cluster, also those other nodes run (as last renewed)."""
    return site_cameras(live, who, time.time())


@router.get("/api/cameras/{camera_id}", responses=AUTH_ERRORS | NOT_FOUND)
def camera(live: Live, who: Viewer, camera_id: str) -> CameraOut:
    known_camera(live, who, camera_id)
    return camera_out(live, camera_id, time.time())


FRAME = {200: {"content": {"image/jpeg": {}}}} | AUTH_ERRORS | NOT_FOUND | {502: {"model": Error}}


@router.get("/api/cameras/{camera_id}/latest.jpg", response_class=Response, responses=FRAME)
async def latest_frame(request: Request, live: Live, who: Viewer, camera_id: str) -> Response:
    """The camera's newest frame (not audited: consoles poll it for the camera wall)."""
    worker = camera_worker(live, who, camera_id)
    if isinstance(worker, NodeInfo):
        return await forward(request, worker, camera_id)
    jpeg = worker.latest
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no frame yet")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


WIDTH = Annotated[int, Query(ge=160, le=1920, description="frame width in pixels")]


@router.get("/api/cameras/{camera_id}/view.jpg", response_class=Response, responses=FRAME)
async def view_frame(request: Request, live: Live, who: Viewer, camera_id: str, width: WIDTH = 640) -> Response:
    """The newest frame of the live video, drawn as in `live.mjpeg`: a wall of many cameras polls this, since a
    browser keeps only six connections to a server and each MJPEG stream holds one for good."""
    worker = camera_worker(live, who, camera_id)
    if isinstance(worker, NodeInfo):
        return await forward(request, worker, camera_id)
    view = await run_in_threadpool(worker.view, width)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no frame yet")
    headers = {"Cache-Control": "no-store", "X-Frame-Index": str(view[0])}
    return Response(view[1], media_type="image/jpeg", headers=headers)


@router.get(
    "/api/cameras/{camera_id}/live.mjpeg",
    response_class=StreamingResponse,
    responses={200: {"content": {"multipart/x-mixed-replace": {}}}} | AUTH_ERRORS | NOT_FOUND | {502: {"model": Error}},
)
async def live_view(
    request: Request, live: Live, hub: Hub, who: Viewer, camera_id: str, width: WIDTH = 640,
) -> StreamingResponse:
    """Live video as MJPEG (an `<img>` plays it): every sampled frame, with zones, lines, tracks and alarms drawn.
    In a cluster, any node serves it: from the node that runs the camera."""
    worker = camera_worker(live, who, camera_id)
    if isinstance(worker, NodeInfo):
        return await forward(request, worker, camera_id)
    period = 1.0 / (2 * (worker.cam.detect.fps or 25.0))  # look twice per sampled frame

    async def frames() -> AsyncIterator[bytes]:
        last = None
        while not hub.closed and not await request.is_disconnected():
            view = await run_in_threadpool(worker.view, width)
            if view is not None and view[0] != last:
                last = view[0]
                yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(view[1]) + view[1] + b"\r\n"
            await asyncio.sleep(period)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame", headers=headers)


@router.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS_TYPE: {}}}} | AUTH_ERRORS)
def metrics(live: Live, who: Viewer) -> Response:
    """Prometheus text format; scrape with a viewer token (`authorization: {credentials: ...}`).

    A camera-scoped token gets the site-wide series and its own cameras' only."""
    return Response(live.metrics.render(who.cameras), media_type=PROMETHEUS_TYPE)
