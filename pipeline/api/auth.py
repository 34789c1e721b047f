"""Bearer-token authentication and role checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from pipeline.store import ROLES, EventStore, Role

# auto_error=False: we answer 401 ourselves (HTTPBearer alone says 403 for a missing header).
bearer = HTTPBearer(auto_error=False, description="an API token from `cctv token create`")
# The console signs in once (POST /api/session) and the browser sends the token as an HttpOnly cookie,
# which is what <video>, <img> and EventSource can carry.
SESSION_COOKIE = "cctv_token"
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="set by POST /api/session")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


def get_store(request: Request) -> EventStore:
    return request.app.state.store


Store = Annotated[EventStore, Depends(get_store)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def require(minimum: Role) -> Callable[..., Principal]:
    """A dependency admitting tokens of `minimum` role or higher (viewer < operator < admin)."""

    def dependency(
        store: Store,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        cookie: Annotated[str | None, Security(session_cookie)],
    ) -> Principal:
        token = credentials.credentials if credentials is not None else cookie
        if token is None:
            raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>' or sign in")
        found = store.verify_token(token)
        if found is None:
            raise _unauthorized("invalid, expired or revoked token")
        principal = Principal(*found)
        if ROLES.index(principal.role) < ROLES.index(minimum):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this; needs {minimum!r}"
            )
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
