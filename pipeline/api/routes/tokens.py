"""API tokens, as `cctv token list` and `cctv token revoke` manage them (admin of the whole site)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from pipeline.api.auth import SiteAdmin, Store
from pipeline.api.deps import AUTH_ERRORS, COMMON, NOT_FOUND
from pipeline.api.schemas import RevokeIn, RevokeOut, TokenOut

router = APIRouter(prefix="/api/tokens", responses=COMMON)


@router.get("", responses=AUTH_ERRORS)
def list_tokens(store: Store, _who: SiteAdmin) -> list[TokenOut]:
    """Every token issued, oldest first, with its scope, expiry and state."""
    now = store.clock()
    return [TokenOut.of(record, now) for record in store.list_tokens()]


@router.post("/revoke", responses=AUTH_ERRORS | NOT_FOUND)
def revoke_tokens(store: Store, who: SiteAdmin, body: RevokeIn) -> RevokeOut:
    """Revoke every live token of a name, its console sessions included (their event streams end within
    seconds); audited with the admin's name and address."""
    count = store.revoke_tokens(body.name, who.name, who.source)
    if not count:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live token named {body.name!r} (see GET /api/tokens)")
    return RevokeOut(name=body.name, revoked=count)
