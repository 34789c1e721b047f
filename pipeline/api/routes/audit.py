"""The audit log: who viewed or reviewed what (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pipeline.api.auth import Admin, Store
from pipeline.api.deps import AUTH_ERRORS, COMMON
from pipeline.api.schemas import AuditOut, AuditPage, Page

router = APIRouter(prefix="/api", responses=COMMON)


@router.get("/audit", responses=AUTH_ERRORS)
def audit_log(store: Store, who: Admin, page: Annotated[Page, Query()]) -> AuditPage:
    """Newest first; a camera-scoped admin sees the entries about its cameras only."""
    items, next_cursor = store.audit_log(page.limit, page.cursor, cameras=who.cameras)
    return AuditPage(items=[AuditOut.model_validate(e) for e in items], next_cursor=next_cursor)
