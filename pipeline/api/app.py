"""The FastAPI application factory: one store, the routes, and store errors mapped to HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from pipeline.api.routes import router
from pipeline.errors import CctvError
from pipeline.store.service import EventNotFound, EventStore


def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


def _bad_input(_request: Request, exc: Exception) -> JSONResponse:
    """A CctvError from the store is a client mistake (a stale cursor, say), told in one line."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(store: EventStore) -> FastAPI:
    """The API over `store`; the caller owns the store and closes it."""
    app = FastAPI(title="CCTV selective monitoring", version="1")
    app.state.store = store
    app.include_router(router)
    app.add_exception_handler(EventNotFound, _not_found)
    app.add_exception_handler(CctvError, _bad_input)
    return app
