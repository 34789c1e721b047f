"""The FastAPI application factory: the store, optionally the live service, the routes, errors as statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from pipeline.api.guard import Guard, Methods, validation_error
from pipeline.api.routes import audit, cameras, cluster, events, session, site, tokens
from pipeline.api.stream import EventHub
from pipeline.errors import CctvError
from pipeline.live.site import LiveSite
from pipeline.store import EventNotFound, EventStore, driver_message

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"  # the operator console: static files, no build step
METHODS_NOTE = (  # what the schema lists no operation for (guard.Methods)
    "Every GET operation also answers HEAD: the same status and headers, the same token needed, no body. "
    "OPTIONS on any path is 204 with `Allow` (no token: it tells no more than this schema), and a method "
    "a path has no operation for is 405 with `Allow`."
)


def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The database failed (locked too long, disk full, PostgreSQL down): 503, try again, never a 500."""
    first = driver_message(exc) or type(getattr(exc, "orig", None) or exc).__name__
    return JSONResponse({"detail": f"event store unavailable: {first}; try again"}, status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "5"})


def _bad_input(_request: Request, exc: Exception) -> JSONResponse:
    """A CctvError from the store is a client mistake (a stale cursor, say), told in one line."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(
    store: EventStore, live: LiveSite | None = None, groups: Mapping[str, Sequence[str]] | None = None
) -> FastAPI:
    """The API over `store`; with `live`, the app starts its cameras on startup and stops them on shutdown.

    groups: the site's camera groups, which scoped tokens may name (default: the live site's). The
    caller owns the store and closes it.
    """
    hub = EventHub()
    store.subscribe(hub, cluster_wide=True)  # a cluster node's stream carries every node's events

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if live is not None:
            await run_in_threadpool(live.start)
        try:
            yield
        finally:
            hub.close()
            if live is not None:
                await run_in_threadpool(live.stop)

    app = FastAPI(title="CCTV selective monitoring", version="1", description=METHODS_NOTE, lifespan=lifespan)
    app.state.store = store
    app.state.live = live
    app.state.hub = hub
    app.state.groups = groups if groups is not None else live.site.groups if live is not None else {}
    for resource in (events, cameras, site, session, audit, tokens, cluster):
        app.include_router(resource.router)
    app.mount("/", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")  # last: /api and /metrics win
    app.add_middleware(Methods, router=app.router)  # inside Guard: its answers get the security headers too
    app.add_middleware(Guard)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(EventNotFound, _not_found)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(CctvError, _bad_input)
    return app
