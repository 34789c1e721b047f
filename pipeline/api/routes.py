"""Route handlers: each checks the caller's role, calls the store once or twice and shapes the answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from starlette.responses import Response

from pipeline.api.auth import Admin, Operator, Store, Viewer
from pipeline.api.files import file_response
from pipeline.api.schemas import (
    AuditOut,
    AuditPage,
    Error,
    EventFilter,
    EventOut,
    EventPage,
    Health,
    Page,
    ReviewIn,
    ReviewOut,
)
from pipeline.store import ACTIONS

router = APIRouter(prefix="/api")
AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Error}, 403: {"model": Error}}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Error}}
EVIDENCE_FILES = {  # URL file name -> (StoredEvent field, media type)
    "clip.mp4": ("clip", "video/mp4"),
    "snapshot.jpg": ("snapshot", "image/jpeg"),
    "thumbnail.jpg": ("thumbnail", "image/jpeg"),
}


@router.get("/health")
def health() -> Health:
    """Liveness for load balancers: needs no token."""
    return Health()


@router.get("/events", responses=AUTH_ERRORS)
def list_events(store: Store, _: Viewer, filters: Annotated[EventFilter, Query()]) -> EventPage:
    items, next_cursor = store.query(**filters.model_dump())
    return EventPage(items=[EventOut.of(s) for s in items], next_cursor=next_cursor)


@router.get("/events/{event_id}", responses=AUTH_ERRORS | NOT_FOUND)
def get_event(store: Store, _: Viewer, event_id: str) -> EventOut:
    return EventOut.of(store.get(event_id))


def _evidence_handler(kind: str, media_type: str) -> Callable[..., Response]:
    """One handler per evidence kind; every view is audited, since evidence may show people."""

    def handler(
        store: Store, who: Viewer, event_id: str, range_header: Annotated[str | None, Header(alias="Range")] = None
    ) -> Response:
        relative = getattr(store.get(event_id), kind)
        path = None if relative is None else store.evidence_path(relative)
        if path is None or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"event {event_id!r} has no {kind}")
        response = file_response(path, media_type, range_header)
        store.audit_view(who.name, kind, event_id, {"range": range_header} if range_header else None)
        return response

    return handler


for filename, (kind, media_type) in EVIDENCE_FILES.items():
    router.add_api_route(
        f"/events/{{event_id}}/{filename}",
        _evidence_handler(kind, media_type),
        methods=["GET"],
        name=f"get_{kind}",
        summary=f"The event's {kind} ({media_type}), honouring a single-range Range header",
        response_class=Response,
        responses={200: {"content": {media_type: {}}}, 206: {"content": {media_type: {}}}, 416: {"model": Error}}
        | AUTH_ERRORS
        | NOT_FOUND,
    )


@router.post("/events/{event_id}/review", responses=AUTH_ERRORS | NOT_FOUND)
def review_event(store: Store, who: Operator, event_id: str, body: ReviewIn) -> ReviewOut:
    """Record an operator decision; the operator is the token's name, never a field the client sets.

    Every console hears of it on the event stream, so an event one operator cleared leaves all queues.
    """
    review = store.review(event_id, body.action, who.name, body.note)
    return ReviewOut.model_validate({**asdict(review), "review_state": ACTIONS[review.action]})


@router.get("/audit", responses=AUTH_ERRORS)
def audit_log(store: Store, _: Admin, page: Annotated[Page, Query()]) -> AuditPage:
    items, next_cursor = store.audit_log(page.limit, page.cursor)
    return AuditPage(items=[AuditOut.model_validate(e) for e in items], next_cursor=next_cursor)
