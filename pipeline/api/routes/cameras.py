"""Cameras of the live site: their state, their newest frames, and the Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, status
from starlette.responses import Response

from pipeline.api.auth import Viewer
from pipeline.api.deps import AUTH_ERRORS, NOT_FOUND, Live, camera_worker
from pipeline.api.schemas import CameraOut

router = APIRouter()
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/api/cameras", responses=AUTH_ERRORS)
def cameras(live: Live, _: Viewer) -> list[CameraOut]:
    now = time.time()
    return [CameraOut.of(worker, now) for worker in live.cameras.values()]


@router.get("/api/cameras/{camera_id}", responses=AUTH_ERRORS | NOT_FOUND)
def camera(live: Live, _: Viewer, camera_id: str) -> CameraOut:
    return CameraOut.of(camera_worker(live, camera_id), time.time())


@router.get(
    "/api/cameras/{camera_id}/latest.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}} | AUTH_ERRORS | NOT_FOUND,
)
def latest_frame(live: Live, _: Viewer, camera_id: str) -> Response:
    """The camera's newest frame (not audited: consoles poll it for the camera wall)."""
    jpeg = camera_worker(live, camera_id).latest
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no frame yet")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS_TYPE: {}}}} | AUTH_ERRORS)
def metrics(live: Live, _: Viewer) -> Response:
    """Prometheus text format; scrape with a viewer token (`authorization: {credentials: ...}`)."""
    return Response(live.metrics.render(), media_type=PROMETHEUS_TYPE)
