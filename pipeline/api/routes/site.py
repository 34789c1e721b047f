"""The site as a whole: liveness for load balancers, and what a console needs to know of the site."""

from __future__ import annotations

import time

from fastapi import APIRouter

from pipeline.api.auth import Viewer
from pipeline.api.deps import AUTH_ERRORS, Live
from pipeline.api.schemas import Health, SiteOut

router = APIRouter(prefix="/api")


@router.get("/health")
def health() -> Health:
    """Liveness for load balancers: needs no token."""
    return Health()


@router.get("/site", responses=AUTH_ERRORS)
def site(live: Live, _: Viewer) -> SiteOut:
    rules = {rule.name: rule.priority for cam in live.site.cameras.values() for rule in cam.rules}
    share = live.selection_share(time.time())
    return SiteOut(timezone=live.site.service.timezone, cameras=list(live.cameras), rules=rules, selection_share=share)
