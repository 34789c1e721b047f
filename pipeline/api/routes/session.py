"""Console sign-in: a token checked once and kept in an HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from pipeline.api.auth import SESSION_COOKIE, Store, Viewer, principal_of
from pipeline.api.deps import AUTH_ERRORS
from pipeline.api.schemas import Error, SessionIn, SessionOut

router = APIRouter(prefix="/api/session")


@router.post("", responses={401: {"model": Error}})
def sign_in(request: Request, store: Store, body: SessionIn, response: Response) -> SessionOut:
    """Check a token and keep it in an HttpOnly cookie for the console (video, images and the stream).

    Every sign-in is audited with the client's address, and so is a refused one."""
    found = store.verify_token(body.token)
    source = request.client.host if request.client else None
    if found is None:
        store.audit("(unknown)", "sign_in.refused", source=source)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid, expired or revoked token")
    who = principal_of(request, found)
    store.audit(who.name, "sign_in", source=source)
    response.set_cookie(SESSION_COOKIE, body.token, httponly=True, samesite="strict", path="/")
    return SessionOut.of(who)


@router.get("", responses=AUTH_ERRORS)
def session(who: Viewer) -> SessionOut:
    return SessionOut.of(who)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
