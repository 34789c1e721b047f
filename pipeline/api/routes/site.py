"""The site as a whole: liveness for load balancers, and what a console needs to know of the site."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from pipeline.api.auth import Viewer
from pipeline.api.deps import AUTH_ERRORS, COMMON, Live, site_cameras
from pipeline.api.schemas import Health, SiteOut

router = APIRouter(prefix="/api", responses=COMMON)


@router.get("/health")
def health(request: Request) -> Health:
    """Liveness for load balancers, and whether the event store takes writes: needs no token."""
    live = request.app.state.live
    if live is None:
        return Health()
    store = live.writer.health()
    return Health(status="ok" if store.ok else "degraded", store_reason=store.reason, spooled_writes=store.spooled)


@router.get("/site", responses=AUTH_ERRORS)
def site(live: Live, who: Viewer) -> SiteOut:
    """The site as the caller may see it: its cameras, their rules, their share of time on the wall."""
    cameras = site_cameras(live, who, time.time())
    rules = {rule.name: rule.priority for camera in cameras for rule in live.site.cameras[camera.id].rules}
    share = round(sum(c.selection_share for c in cameras) / len(cameras), 4) if cameras else 0.0
    names = [camera.id for camera in cameras]
    return SiteOut(timezone=live.site.service.timezone, cameras=names, rules=rules, selection_share=share)
