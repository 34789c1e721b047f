"""Routes over the live service: cameras and their latest frames, the event stream, metrics, sign-in."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse

from pipeline.api.auth import SESSION_COOKIE, Store, Viewer
from pipeline.api.schemas import CameraOut, Error, SessionIn, SessionOut, SiteOut
from pipeline.api.stream import EventHub
from pipeline.live.camera import CameraWorker
from pipeline.live.service import LiveService

router = APIRouter()
AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Error}, 403: {"model": Error}}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Error}}
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def get_live(request: Request) -> LiveService:
    live: LiveService | None = request.app.state.live
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no cameras: this API serves a stored archive only")
    return live


def get_hub(request: Request) -> EventHub:
    return request.app.state.hub


Live = Annotated[LiveService, Depends(get_live)]
Hub = Annotated[EventHub, Depends(get_hub)]


def _camera(live: LiveService, camera_id: str) -> CameraWorker:
    worker = live.cameras.get(camera_id)
    if worker is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; known: {', '.join(live.cameras)}")
    return worker


@router.post("/api/session", responses={401: {"model": Error}})
def sign_in(store: Store, body: SessionIn, response: Response) -> SessionOut:
    """Check a token and keep it in an HttpOnly cookie for the console (video, images and the stream)."""
    found = store.verify_token(body.token)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid, expired or revoked token")
    response.set_cookie(SESSION_COOKIE, body.token, httponly=True, samesite="strict", path="/")
    return SessionOut(name=found[0], role=found[1])


@router.get("/api/session", responses=AUTH_ERRORS)
def session(who: Viewer) -> SessionOut:
    return SessionOut(name=who.name, role=who.role)


@router.delete("/api/session", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/api/site", responses=AUTH_ERRORS)
def site(live: Live, _: Viewer) -> SiteOut:
    rules = {rule.name: rule.priority for cam in live.site.cameras.values() for rule in cam.rules}
    return SiteOut(timezone=live.site.service.timezone, cameras=list(live.cameras), rules=rules)


@router.get("/api/cameras", responses=AUTH_ERRORS)
def cameras(live: Live, _: Viewer) -> list[CameraOut]:
    now = time.time()
    return [CameraOut.of(worker, now) for worker in live.cameras.values()]


@router.get("/api/cameras/{camera_id}", responses=AUTH_ERRORS | NOT_FOUND)
def camera(live: Live, _: Viewer, camera_id: str) -> CameraOut:
    return CameraOut.of(_camera(live, camera_id), time.time())


@router.get(
    "/api/cameras/{camera_id}/latest.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}} | AUTH_ERRORS | NOT_FOUND,
)
def latest_frame(live: Live, _: Viewer, camera_id: str) -> Response:
    """The camera's newest frame (not audited: consoles poll it for the camera wall)."""
    jpeg = _camera(live, camera_id).latest
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no frame yet")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/api/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}} | AUTH_ERRORS,
)
async def event_stream(hub: Hub, _: Viewer) -> StreamingResponse:
    """Server-sent events `start`, `update`, `end`, `evidence` and `review`, each with the event as JSON."""
    queue = hub.connect()
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(hub.stream(queue), media_type="text/event-stream", headers=headers)


@router.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS_TYPE: {}}}} | AUTH_ERRORS)
def metrics(live: Live, _: Viewer) -> Response:
    """Prometheus text format; scrape with a viewer token (`authorization: {credentials: ...}`)."""
    return Response(live.metrics.render(), media_type=PROMETHEUS_TYPE)

