"""What route handlers share beyond authentication: the live site, the event hub, documented error answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from pipeline.api.schemas import Error
from pipeline.api.stream import EventHub
from pipeline.live.camera import CameraWorker
from pipeline.live.site import LiveSite

AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Error}, 403: {"model": Error}}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Error}}


def get_live(request: Request) -> LiveSite:
    live: LiveSite | None = request.app.state.live
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no cameras: this API serves a stored archive only")
    return live


def get_hub(request: Request) -> EventHub:
    return request.app.state.hub


Live = Annotated[LiveSite, Depends(get_live)]
Hub = Annotated[EventHub, Depends(get_hub)]


def camera_worker(live: LiveSite, camera_id: str) -> CameraWorker:
    """The named camera, or 404 listing the known ones."""
    worker = live.cameras.get(camera_id)
    if worker is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; known: {', '.join(live.cameras)}")
    return worker
