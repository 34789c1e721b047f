"""Console sign-in: a token checked once and kept in an HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from pipeline.api.auth import SESSION_COOKIE, Store, Viewer
from pipeline.api.deps import AUTH_ERRORS
from pipeline.api.schemas import Error, SessionIn, SessionOut

router = APIRouter(prefix="/api/session")


@router.post("", responses={401: {"model": Error}})
def sign_in(store: Store, body: SessionIn, response: Response) -> SessionOut:
    """Check a token and keep it in an HttpOnly cookie for the console (video, images and the stream)."""
    found = store.verify_token(body.token)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid, expired or revoked token")
    response.set_cookie(SESSION_COOKIE, body.token, httponly=True, samesite="strict", path="/")
    return SessionOut(name=found[0], role=found[1])


@router.get("", responses=AUTH_ERRORS)
def session(who: Viewer) -> SessionOut:
    return SessionOut(name=who.name, role=who.role)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
