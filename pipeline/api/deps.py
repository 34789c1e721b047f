"""What route handlers share beyond authentication: the live site, the event hub, documented error answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from pipeline.api.auth import Principal
from pipeline.api.schemas import Error, Invalid
from pipeline.api.stream import EventHub
from pipeline.live.camera import CameraWorker
from pipeline.live.site import LiveSite
from pipeline.store import EventNotFound, EventStore, StoredEvent

AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Error}, 403: {"model": Error}}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Error}}
# What any route may answer before or beside its own work: the request guard (400 NUL bytes, 413 too large),
# validation (422) and an unavailable store or live site (503).
COMMON: dict[int | str, dict[str, object]] = {
    400: {"model": Error}, 413: {"model": Error}, 422: {"model": Invalid}, 503: {"model": Error},
}


def get_live(request: Request) -> LiveSite:
    live: LiveSite | None = request.app.state.live
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no cameras: this API serves a stored archive only")
    return live


def get_hub(request: Request) -> EventHub:
    return request.app.state.hub


Live = Annotated[LiveSite, Depends(get_live)]
Hub = Annotated[EventHub, Depends(get_hub)]


def camera_worker(live: LiveSite, who: Principal, camera_id: str) -> CameraWorker:
    """The named camera, or 404 listing the ones the caller may see (a camera outside its scope is unknown)."""
    worker = live.cameras.get(camera_id) if who.sees(camera_id) else None
    if worker is None:
        known = ", ".join(who.visible(live.cameras)) or "none"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; known: {known}")
    return worker


def visible_event(store: EventStore, who: Principal, event_id: str) -> StoredEvent:
    """The event, if the caller may see its camera; otherwise not found, as if it did not exist."""
    stored = store.get(event_id)
    if not who.sees(stored.event.camera):
        raise EventNotFound(f"no event {event_id!r}")
    return stored
