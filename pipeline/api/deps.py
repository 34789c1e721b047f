"""What route handlers share beyond authentication: the live site, the event hub, documented error answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from pipeline.api.auth import Principal
from pipeline.api.schemas import CameraOut, Error, Invalid
from pipeline.api.stream import EventHub
from pipeline.live.camera import CameraWorker, source_label
from pipeline.live.site import LiveSite
from pipeline.store import EventNotFound, EventStore, NodeInfo, StoredEvent

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


def known_camera(live: LiveSite, who: Principal, camera_id: str) -> None:
    """404 listing the cameras the caller may see, unless it may see `camera_id` (one outside its scope is unknown)."""
    if not who.sees(camera_id) or camera_id not in live.site.cameras:
        known = ", ".join(who.visible(live.site.cameras)) or "none"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; known: {known}")


def camera_worker(live: LiveSite, who: Principal, camera_id: str) -> CameraWorker | NodeInfo:
    """The named camera if it runs here, else (a cluster) the node that runs it; 404 if unknown to the caller,
    503 when no node runs it now."""
    known_camera(live, who, camera_id)
    worker = live.cameras.get(camera_id)
    if worker is not None:
        return worker
    owner = live.cluster.view.owner(camera_id) if live.cluster is not None else None
    if owner is None or live.cluster is None or owner.name == live.cluster.name:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"camera {camera_id!r} is not running now; try again",
                            headers={"Retry-After": "2"})
    return owner


def camera_out(live: LiveSite, name: str, now: float) -> CameraOut:
    """A camera as the API shows it: from its worker here, else (a cluster) as its node last recorded it."""
    node = live.cluster.name if live.cluster is not None else None
    worker = live.cameras.get(name)
    if worker is not None:
        return CameraOut.of(worker, now, node)
    owner = live.cluster.view.owner(name) if live.cluster is not None else None
    status = live.cluster.statuses().get(name) if live.cluster is not None and owner is not None else None
    if owner is None or not status:
        return CameraOut.unassigned(name, source_label(live.site.cameras[name].source))
    return CameraOut.of_status(status, owner.name)


def site_cameras(live: LiveSite, who: Principal, now: float) -> list[CameraOut]:
    """Every camera of the site the caller may see, wherever it runs."""
    return [camera_out(live, name, now) for name in who.visible(live.site.cameras)]


def visible_event(store: EventStore, who: Principal, event_id: str) -> StoredEvent:
    """The event, if the caller may see its camera; otherwise not found, as if it did not exist."""
    stored = store.get(event_id)
    if not who.sees(stored.event.camera):
        raise EventNotFound(f"no event {event_id!r}")
    return stored
