"""Events: the list with filters and cursors, one event, its evidence files, reviews, the live stream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from pipeline.api.auth import Operator, Store, Viewer
from pipeline.api.deps import AUTH_ERRORS, COMMON, NOT_FOUND, Hub, visible_event
from pipeline.api.files import file_response
from pipeline.api.schemas import Error, EventFilter, EventOut, EventPage, ExportIn, ReviewIn, ReviewOut
from pipeline.export import MASK_OPTIONS
from pipeline.export import export_event as export_event_zip
from pipeline.store import ACTIONS

router = APIRouter(prefix="/api/events", responses=COMMON)
EVIDENCE_FILES = {  # URL file name -> (StoredEvent field, media type)
    "clip.mp4": ("clip", "video/mp4"),
    "raw.mp4": ("raw_clip", "video/mp4"),
    "snapshot.jpg": ("snapshot", "image/jpeg"),
    "thumbnail.jpg": ("thumbnail", "image/jpeg"),
}


# First: /api/events/stream must not be taken for an event id.
@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}} | AUTH_ERRORS,
)
async def event_stream(store: Store, hub: Hub, who: Viewer) -> StreamingResponse:
    """Server-sent events `start`, `update`, `end`, `evidence` and `review`, each with the event as JSON
    (of the cameras the caller may see); the stream ends within seconds of its token being revoked or expiring."""
    queue = hub.connect(who.cameras)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    stream = hub.stream(queue, lambda: store.verify_token(who.token) is not None)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@router.get("", responses=AUTH_ERRORS)
def list_events(store: Store, who: Viewer, filters: Annotated[EventFilter, Query()]) -> EventPage:
    items, next_cursor = store.query(**filters.model_dump(), cameras=who.cameras)
    return EventPage(items=[EventOut.of(s) for s in items], next_cursor=next_cursor)


@router.get("/{event_id}", responses=AUTH_ERRORS | NOT_FOUND)
def get_event(store: Store, who: Viewer, event_id: str) -> EventOut:
    return EventOut.of(visible_event(store, who, event_id))


def _evidence_handler(kind: str, media_type: str) -> Callable[..., Response]:
    """One handler per evidence kind; every view is audited, since evidence may show people."""

    def handler(
        store: Store, who: Viewer, event_id: str, range_header: Annotated[str | None, Header(alias="Range")] = None
    ) -> Response:
        stored = visible_event(store, who, event_id)
        relative = getattr(stored, kind)
        path = None if relative is None else store.evidence_path(relative)
        if path is None or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"event {event_id!r} has no {kind}")
        response = file_response(path, media_type, range_header)
        detail = {"range": range_header} if range_header else None
        store.audit_view(who.name, kind, event_id, detail, camera=stored.event.camera, source=who.source)
        return response

    return handler


for filename, (kind, media_type) in EVIDENCE_FILES.items():
    router.add_api_route(
        f"/{{event_id}}/{filename}",
        _evidence_handler(kind, media_type),
        methods=["GET"],
        name=f"get_{kind}",
        summary=f"The event's {kind} ({media_type}), honouring a single-range Range header",
        response_class=Response,
        responses={200: {"content": {media_type: {}}}, 206: {"content": {media_type: {}}}, 416: {"model": Error}}
        | AUTH_ERRORS
        | NOT_FOUND,
    )


@router.post("/{event_id}/review", responses=AUTH_ERRORS | NOT_FOUND)
def review_event(store: Store, who: Operator, event_id: str, body: ReviewIn) -> ReviewOut:
    """Record an operator decision; the operator is the token's name, never a field the client sets.

    Every console hears of it on the event stream, so an event one operator cleared leaves all queues.
    """
    visible_event(store, who, event_id)
    review = store.review(event_id, body.action, who.name, body.note, who.source)
    return ReviewOut.model_validate({**asdict(review), "review_state": ACTIONS[review.action]})


@router.post(
    "/{event_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}} | AUTH_ERRORS | NOT_FOUND,
)
def export_event(request: Request, store: Store, who: Operator, event_id: str, body: ExportIn) -> Response:
    """A ZIP of the event's clip and snapshot, third parties pixelated as asked, with a signed manifest
    (`cctv verify-export` checks it); the export and its reason are audited."""
    visible_event(store, who, event_id)
    live = request.app.state.live
    detector = None if live is None else live.detector.beside_cameras(MASK_OPTIONS)
    data, manifest = export_event_zip(
        store, event_id, reason=body.reason, actor=who.name, mask=body.mask, detector=detector, source=who.source
    )
    name = f"{event_id}-export.zip"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Export-Signature": manifest["signature"]}
    return Response(data, media_type="application/zip", headers=headers)
