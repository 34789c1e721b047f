"""Bearer-token authentication, role checks and camera scopes, as FastAPI dependencies.

A token limited to some cameras (or camera groups of the site config) sees nothing of the others:
they are left out of every list, and asked for by id they are "not found", as if they did not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from pipeline.store import ROLES, EventStore, Role, TokenInfo

# auto_error=False: we answer 401 ourselves (HTTPBearer alone says 403 for a missing header).
bearer = HTTPBearer(auto_error=False, description="an API token from `cctv token create`")
# The console signs in once (POST /api/session) and the browser sends the token as an HttpOnly cookie,
# which is what <video>, <img> and EventSource can carry.
SESSION_COOKIE = "cctv_token"
MISSING_TOKEN = "missing bearer token: send 'Authorization: Bearer <token>' or sign in"
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="set by POST /api/session")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: the token's name and role, the cameras it may see (None: all) and where it called from."""

    name: str
    role: Role
    cameras: frozenset[str] | None = None
    source: str | None = None
    token: str = field(default="", repr=False, compare=False)  # to check later that it is still live (streams)

    def sees(self, camera: str) -> bool:
        return self.cameras is None or camera in self.cameras

    def visible(self, cameras: Iterable[str]) -> list[str]:
        return [c for c in cameras if self.sees(c)]


def client_address(request: Request) -> str | None:
    """Where a request came from, for the audit log."""
    return request.client.host if request.client else None


def principal_of(request: Request, info: TokenInfo, token: str = "") -> Principal:
    """A verified token's principal, its camera groups resolved against the site's current config."""
    groups: Mapping[str, Sequence[str]] = request.app.state.groups
    if info.cameras is None and info.groups is None:
        scope = None
    else:
        scope = frozenset(info.cameras or ()) | {c for g in info.groups or () for c in groups.get(g, ())}
    return Principal(info.name, info.role, scope, client_address(request), token)


def get_store(request: Request) -> EventStore:
    return request.app.state.store


Store = Annotated[EventStore, Depends(get_store)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def require(minimum: Role) -> Callable[..., Principal]:
    """A dependency admitting tokens of `minimum` role or higher (viewer < operator < admin)."""

    def dependency(
        request: Request,
        store: Store,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        cookie: Annotated[str | None, Security(session_cookie)],
    ) -> Principal:
        token = credentials.credentials if credentials is not None else cookie
        if token is None:
            raise _unauthorized(MISSING_TOKEN)
        found = store.verify_token(token)
        if found is None:
            raise _unauthorized("invalid, expired or revoked token")
        principal = principal_of(request, found, token)
        if ROLES.index(principal.role) < ROLES.index(minimum):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this; needs {minimum!r}"
            )
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def site_admin(who: Admin) -> Principal:
    """Tokens and the cluster are the site's, not a camera's: a camera-scoped admin neither sees nor changes them
    (it could otherwise lock out the site's own admins)."""
    if who.cameras is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a camera-scoped admin may not manage the site's tokens or cluster; use a site-wide one"
        )
    return who


SiteAdmin = Annotated[Principal, Depends(site_admin)]
