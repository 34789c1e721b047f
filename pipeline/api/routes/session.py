"""Console sign-in: a session of its own (not the API token), kept in an HttpOnly cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, Security, status

from pipeline.api.auth import SESSION_COOKIE, Store, Viewer, client_address, principal_of, session_cookie
from pipeline.api.deps import AUTH_ERRORS, COMMON
from pipeline.api.schemas import Error, SessionIn, SessionOut

router = APIRouter(prefix="/api/session", responses=COMMON)
SESSION_HOURS = 12.0  # a console shift


@router.post("", responses={401: {"model": Error}})
def sign_in(request: Request, store: Store, body: SessionIn, response: Response) -> SessionOut:
    """Check a token and start a console session: an HttpOnly cookie (video, images and the stream carry it)
    holding a session token of its own, which expires in SESSION_HOURS and is revoked at sign-out.

    Every sign-in is audited with the client's address, and so is a refused one."""
    found = store.verify_token(body.token)
    source = client_address(request)
    if found is None:
        store.audit("(unknown)", "sign_in.refused", source=source)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid, expired or revoked token")
    session_token = store.create_session(found, SESSION_HOURS, source)
    cookie = {"httponly": True, "samesite": "strict", "path": "/", "max_age": int(SESSION_HOURS * 3600)}
    response.set_cookie(SESSION_COOKIE, session_token, **cookie)  # type: ignore[arg-type]
    return SessionOut.of(principal_of(request, found))


@router.get("", responses=AUTH_ERRORS)
def session(who: Viewer) -> SessionOut:
    return SessionOut.of(who)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(
    request: Request, store: Store, response: Response, cookie: Annotated[str | None, Security(session_cookie)]
) -> None:
    """End the console session: its token is revoked (a copied cookie stops working too)."""
    if cookie is not None:
        store.end_session(cookie, client_address(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
